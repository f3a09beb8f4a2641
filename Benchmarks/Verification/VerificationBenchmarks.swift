import Benchmark
import Crypto
import Foundation
import Verification

/// Verify a 1 KiB TikTok event against the raw HMAC-SHA256 of the same bytes, in the same run.
/// The target: verify costs at most 1.3x the raw HMAC and allocates nothing beyond what the HMAC
/// itself needs (compare the two `Malloc (total)` rows).
let benchmarks: @Sendable () -> Void = {
    let secret = "client_secret_example"
    let timestamp = "1615338610"
    let body = Array(event(size: 1_024).utf8)
    var signed = Array("\(timestamp).".utf8)
    signed += body
    let key = SymmetricKey(data: Array(secret.utf8))
    let signature = HMAC<SHA256>.authenticationCode(for: signed, using: key)
        .map { String(format: "%02x", $0) }.joined()
    let headers = [("Content-Type", "application/json"), ("TikTok-Signature", "t=\(timestamp),s=\(signature)")]
    let verifier = WebhookVerifier.tiktok(secrets: [Secret(secret)])
    let now = Date(timeIntervalSince1970: 1_615_338_610)
    precondition((try? verifier.verify(body: body, headers: headers, now: now)) != nil)

    let configuration = Benchmark.Configuration(
        metrics: [.cpuTotal, .wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000_000
    )

    Benchmark("raw HMAC-SHA256 of t.body (1 KiB)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(HMAC<SHA256>.authenticationCode(for: signed, using: key))
        }
    }

    Benchmark("TikTok verify (1 KiB)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try verifier.verify(body: body, headers: headers, now: now))
        }
    }
}

/// A `minis.trade_order.redeem.success` event padded to `size` bytes.
func event(size: Int) -> String {
    let head =
        #"{"client_key":"your_client_key","event":"minis.trade_order.redeem.success","create_time":1615338610,"user_openid":"","content":"{\"trade_order_id\":\"TOID667700996\",\"order_id\":\"order_42\",\"is_sandbox\":true,\"note\":\""#
    let tail = #"\"}"}"#
    return head + String(repeating: "x", count: size - head.utf8.count - tail.utf8.count) + tail
}
