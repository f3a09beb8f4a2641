import Foundation

/// Test vectors computed outside this project: the TikTok and TikTok Shop signatures with
/// Python's `hmac` module, the Standard Webhooks one from the Standard Webhooks reference libraries
/// (and re-checked with Python's `hmac`). Body hashes with Python's `hashlib.sha256`.
enum Vectors {
    enum TikTok {
        static let secret = "client_secret_example"
        static let timestamp: Int64 = 1_615_338_610
        static let body =
            #"{"client_key":"your_client_key","event":"minis.trade_order.redeem.success","create_time":1615338610,"user_openid":"","content":"{\"trade_order_id\":\"TOID667700996\",\"order_id\":\"order_id_as_in_your_system\",\"is_sandbox\":true}"}"#
        static let signature = "9a0403a0527e9b5b80981e143dd32d045f6381f404d4c4625d1c74d32800ea1e"
        static var header: String { "t=\(timestamp),s=\(signature)" }
        static var now: Date { Date(timeIntervalSince1970: TimeInterval(timestamp)) }
        static var bodyBytes: [UInt8] { Array(body.utf8) }
    }

    enum TikTokShop {
        static let appKey = "68xu9ks5p4i8"
        static let appSecret = "e59af819cc"
        static let body =
            #"{"type":1,"tts_notification_id":"7327112393057371910","shop_id":"7494049642642441621","timestamp":1644412885,"data":{"order_id":"576461413038785752","order_status":"AWAITING_SHIPMENT","update_time":1644412885}}"#
        static let signature = "3f67ddd0af15077f0a2dbb669f655cee785ae8dc9c59bea41f88f191029e84ff"
        static var bodyBytes: [UInt8] { Array(body.utf8) }
    }

    enum StandardWebhooks {
        static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        static let id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
        static let timestamp: Int64 = 1_614_265_330
        static let body = #"{"test": 2432232314}"#
        static let signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        static var now: Date { Date(timeIntervalSince1970: TimeInterval(timestamp)) }
    }

    /// A signed TikTok event without an `order_id`, and its body's SHA-256 (hashlib).
    enum NoOrder {
        static let body =
            #"{"client_key":"k","event":"minis.trade_order.refund_traceback","create_time":1615338610,"user_openid":"","content":"{\"note\":\"no order here\"}"}"#
        static let sha256 = "d78ff5302cc85c4f9b09d63f1f1303b8d52e8b51319a24e6f612c3395795de7a"
    }

    /// SHA-256 of `not json at all` (hashlib).
    static let notJSONSHA256 = "92628a747890d02d1459c6eb45fd13cfa63bbb6d346412cff190297cf9c33d39"
}
