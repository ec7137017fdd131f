import BasaltCore
public import BasaltServices
import Foundation

/// A shop's business logic on Basalt, as a library user writes it: an order's total is computed
/// on the server from the product's price, and its stock is reserved in the order's own
/// transaction — an order either exists with its stock taken, or neither happened.
///
/// - placing an order (create): `total_cents = price_cents × quantity`; `stock -= quantity`,
///   refused with `409` when that would go below zero (nothing is written then);
/// - changing the quantity of a placed order: the stock moves by the difference, the total follows;
/// - cancelling (`status: cancelled`) gives the stock back; a cancelled order stays cancelled;
/// - deleting a placed order (admins) gives the stock back too.
///
/// The price is read before the transaction (a price change racing an order may bill the old
/// price, as in any shop that shows a price before checkout); the stock is decided inside it.
public enum Shop {
    public static let schema = """
        collections:
          products:
            fields:
              name:        {type: text, required: true, max: 200}
              price_cents: {type: integer, required: true, min: 0}
              stock:       {type: integer, required: true, min: 0}
            access:
              list: [{who: public}]
              view: [{who: public}]
          orders:
            fields:
              product:     {type: relation, collection: products, required: true, on_delete: restrict}
              quantity:    {type: integer, required: true, min: 1, max: 1000}
              total_cents: {type: integer, min: 0}
              status:      {type: select, values: [placed, cancelled], default: placed}
              customer:    {type: relation, collection: users, required: true, on_delete: cascade}
            access:
              list:   [{who: authenticated, where: "customer = @auth.id"}]
              view:   [{who: authenticated, where: "customer = @auth.id"}]
              create: [{who: authenticated, where: "@new.customer = @auth.id"}]
              update: [{who: authenticated, where: "customer = @auth.id && @new.customer = @auth.id"}]
        """

    /// An order as the hooks see it (the `orders` collection's fields).
    public struct Order: Codable, Sendable {
        public var id: String
        public var product: String
        public var quantity: Int64
        public var totalCents: Int64?
        public var status: String
        public var customer: String

        enum CodingKeys: String, CodingKey {
            case id, product, quantity, status, customer
            case totalCents = "total_cents"
        }
    }

    /// The shop's hooks. `placed` runs after an order's creation has committed (at least once;
    /// a receipt mail, a message to the warehouse).
    public static func hooks(placed: @escaping @Sendable (HookEvent) async throws -> Void = { _ in }) -> RecordHooks {
        var hooks = RecordHooks()
        hooks.before("orders", on: [.create], as: Order.self) { order, change in
            let price = try await price(of: order.product, change)
            order.totalCents = price * order.quantity
            order.status = "placed"
            try reserve(order.quantity, of: order.product, in: &change)
        }
        hooks.before("orders", on: [.update], as: Order.self) { order, change in
            let before = try Order.decodeStored(change.current)
            guard order.product == before.product else {
                throw BasaltError.validation([FieldError(field: "/product", code: .readOnly, message: "an order's product cannot change")])
            }
            switch (before.status, order.status) {
            case ("cancelled", "placed"):
                throw BasaltError(.conflict, "A cancelled order cannot be placed again; place a new one")
            case ("placed", "cancelled"):
                try reserve(-before.quantity, of: order.product, in: &change)
                order.quantity = before.quantity
                order.totalCents = before.totalCents
            case ("placed", "placed") where order.quantity != before.quantity:
                try reserve(order.quantity - before.quantity, of: order.product, in: &change)
                order.totalCents = try await price(of: order.product, change) * order.quantity
            default:
                order.quantity = before.quantity  // nothing to change on a cancelled order
                order.totalCents = before.totalCents
            }
        }
        hooks.before("orders", on: [.delete]) { change in
            let order = try Order.decodeStored(change.current)
            if order.status == "placed" { try reserve(-order.quantity, of: order.product, in: &change) }
        }
        hooks.after("shop.order-placed", collections: ["orders"], on: [.create], placed)
        return hooks
    }

    static func price(of product: String, _ change: RecordChange) async throws -> Int64 {
        guard let price = try await change.read("products", id: product)?["price_cents"]?.integerValue else {
            throw BasaltError.validation([FieldError(field: "/product", code: .notFound, message: "product: no such product")])
        }
        return price
    }

    /// Takes `quantity` from the product's stock (gives it back when negative) in the write's
    /// transaction; the write is refused when the stock would fall below zero.
    static func reserve(_ quantity: Int64, of product: String, in change: inout RecordChange) throws {
        try change.add(
            -quantity,
            to: "stock",
            of: "products",
            id: product,
            floor: 0,
            orRefuse: BasaltError(
                .conflict,
                "Not enough stock for this order",
                fieldErrors: [FieldError(field: "/quantity", code: .max, message: "quantity exceeds the product's stock")]
            )
        )
    }
}

extension Shop.Order {
    static func decodeStored(_ record: JSONObject?) throws -> Shop.Order {
        guard let record else { throw BasaltError(.internalError, "an order hook ran without the stored order") }
        return try JSONDecoder().decode(Shop.Order.self, from: Data(JSONValue.object(record).serializedBytes()))
    }
}
