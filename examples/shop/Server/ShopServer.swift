// The shop example as a server: `swift run shop-example`, then see examples/shop/README.md.
import Basalt
import BasaltCore
import BasaltServices
import Foundation
import Logging
import ShopExample

@main
struct ShopServer {
    static func main() async throws {
        let env = ProcessInfo.processInfo.environment
        var configuration = BasaltConfiguration()
        configuration.dataDirectory = env["BASALT_DATA"] ?? "./shop-data"
        configuration.databaseURL = env["BASALT_DATABASE_URL"]
        if let http = env["BASALT_HTTP"] { try configuration.setHTTP(http) }
        let logger = Logger(label: "shop")
        configuration.hooks = Shop.hooks(placed: { event in
            // A real shop sends the receipt or tells the warehouse here; it runs at least once per order.
            let total = event.record["total_cents"]?.serialized() ?? "null"
            logger.info("order placed", metadata: ["order": "\(event.recordID)", "total_cents": "\(total)"])
        })
        let schema = try Schema.decode(try SchemaYAML.parse(Shop.schema))
        try await BasaltRuntime.serve(configuration, schema: schema, logger: logger)
    }
}
