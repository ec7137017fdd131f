/// The caller scope whose OpenAPI document generated this module's `Client`.
public let generatedScope = "role"
