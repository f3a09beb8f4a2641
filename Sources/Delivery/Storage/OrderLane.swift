/// The key of an order lane: the deliveries that a consumer gets in the order they were received.
///
/// It is `(source, order id)`: two sources may well use the same order ids for unrelated orders
/// (a Minis app and a Shop), and one must not wait for the other. The two parts are joined with
/// the unit separator (U+001F), which a source name (checked by the configuration) never holds,
/// so no two pairs give the same key.
enum OrderLane {
    static let separator = "\u{1F}"

    static func key(source: String, orderID: String) -> String {
        source + separator + orderID
    }
}
