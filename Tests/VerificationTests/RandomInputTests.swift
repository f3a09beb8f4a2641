import Foundation
import SeededRandom
import Testing

@testable import Verification

struct RandomInputTests {
    static let alphabet = Array("ts=,0123456789abcdefABCDEF ;\t-+.xv1".utf8)

    /// Random header text: mostly the header's own alphabet, so that the parser's edges get hit.
    func randomHeader(_ rng: inout SplitMix64) -> String {
        let length = Int.random(in: 0...160, using: &rng)
        if Bool.random(using: &rng) {
            return String(decoding: (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }, as: UTF8.self)
        }
        var bytes = (0..<length).map { _ in Self.alphabet.randomElement(using: &rng)! }
        if Bool.random(using: &rng) {
            bytes =
                Array("t=\(Vectors.TikTok.timestamp),s=".utf8)
                + (0..<64).map { _ in Array("0123456789abcdef".utf8).randomElement(using: &rng)! }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func randomBodiesAndHeadersNeverVerify() {
        var rng = SplitMix64(state: 20_261_125)
        let tiktok = WebhookVerifier.tiktok(secrets: [Secret(Vectors.TikTok.secret)])
        let shop = WebhookVerifier.tiktokShop(appKey: Secret(Vectors.TikTokShop.appKey), secrets: [Secret(Vectors.TikTokShop.appSecret)])
        let standard = try! StandardWebhooksVerifier(secret: Secret(Vectors.StandardWebhooks.secret))
        var outcomes: [String: Int] = [:]
        for _ in 0..<5_000 {
            let body = (0..<Int.random(in: 0...1_024, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let header = randomHeader(&rng)
            for (verifier, name) in [(tiktok, "TikTok-Signature"), (shop, "Authorization")] {
                do {
                    let verified = try verifier.verify(body: body, headers: [(name, header)], now: Vectors.TikTok.now)
                    Issue.record("random input verified: \(verified)")
                } catch {
                    outcomes[error.detail, default: 0] += 1
                }
            }
            let standardHeaders = [("webhook-id", header), ("webhook-timestamp", header), ("webhook-signature", header)]
            #expect(throws: VerificationError.self) {
                try standard.verify(body: body, headers: standardHeaders, now: Vectors.StandardWebhooks.now)
            }
            // Parsing never crashes either, whatever the bytes.
            _ = Envelope.parse(body: body, source: "tiktok", verified: VerifiedRequest(scheme: .tiktok, timestamp: 1))
        }
        // The generator reached past the parser: some inputs were well formed but wrong.
        #expect(outcomes["no matching signature", default: 0] > 100)
        #expect(outcomes.keys.contains { $0.hasPrefix("malformed") })
    }
}
