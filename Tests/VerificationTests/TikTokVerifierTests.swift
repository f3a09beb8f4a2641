import Foundation
import Testing

@testable import Verification

struct TikTokVerifierTests {
    typealias V = Vectors.TikTok

    let verifier = TikTokVerifier(secrets: [Secret(V.secret)])

    func verify(
        header: String,
        body: [UInt8] = V.bodyBytes,
        now: Date = V.now,
        verifier: TikTokVerifier? = nil
    ) throws(VerificationError) -> VerifiedRequest {
        try (verifier ?? self.verifier).verify(body: body, headers: [("TikTok-Signature", header)], now: now)
    }

    @Test func acceptsIndependentVector() throws {
        let verified = try verify(header: V.header)
        #expect(verified.scheme == .tiktok)
        #expect(verified.timestamp == V.timestamp)
    }

    @Test(arguments: ["TikTok-Signature", "tiktok-signature", "TIKTOK-SIGNATURE", "tIkToK-sIgNaTuRe"])
    func headerNameInAnyCase(name: String) throws {
        _ = try verifier.verify(body: V.bodyBytes, headers: [("Content-Type", "application/json"), (name, V.header)], now: V.now)
    }

    @Test(arguments: [
        "s=\(V.signature),t=\(V.timestamp)",
        " t=\(V.timestamp) , s=\(V.signature) ",
        "t=\(V.timestamp),\ts=\(V.signature)",
        "t=\(V.timestamp),s=\(String(repeating: "0", count: 64)),s=\(V.signature)",
        "s=\(V.signature),t=\(V.timestamp),s=\(String(repeating: "a", count: 64))",
        "t=\(V.timestamp),v2=something-newer,s=\(V.signature)",
    ])
    func tolerantOfWhatSendersDo(header: String) throws {
        _ = try verify(header: header)
    }

    @Test func rotationAcceptsAnyListedSecret() throws {
        let rotating = TikTokVerifier(secrets: [Secret("the_new_secret"), Secret(V.secret)])
        _ = try verify(header: V.header, verifier: rotating)
        let retired = TikTokVerifier(secrets: [Secret("the_new_secret")])
        #expect(throws: VerificationError.noMatchingSignature) { try verify(header: V.header, verifier: retired) }
    }

    @Test func everySingleBitFlipOfTheBodyFails() {
        let body = V.bodyBytes
        for index in body.indices {
            for bit in 0..<8 {
                var flipped = body
                flipped[index] ^= 1 << bit
                #expect(throws: VerificationError.self) { try verify(header: V.header, body: flipped) }
            }
        }
    }

    @Test func everySingleBitFlipOfTheHeaderFails() {
        let header = Array(V.header.utf8)
        for index in header.indices {
            for bit in 0..<8 {
                var flipped = header
                flipped[index] ^= 1 << bit
                let text = String(decoding: flipped, as: UTF8.self)
                #expect(throws: VerificationError.self, "byte \(index) bit \(bit)") { try verify(header: text) }
            }
        }
    }

    @Test func everySingleBitFlipOfTheSignatureValueFails() {
        let bytes = hexBytes(V.signature)
        for index in bytes.indices {
            for bit in 0..<8 {
                var flipped = bytes
                flipped[index] ^= 1 << bit
                let header = "t=\(V.timestamp),s=\(hex(flipped))"
                #expect(throws: VerificationError.noMatchingSignature) { try verify(header: header) }
            }
        }
    }

    @Test func toleranceEdges() throws {
        let t = TimeInterval(V.timestamp)
        _ = try verify(header: V.header, now: Date(timeIntervalSince1970: t + 300))
        _ = try verify(header: V.header, now: Date(timeIntervalSince1970: t - 300))
        #expect(throws: VerificationError.timestampOutsideTolerance) {
            try verify(header: V.header, now: Date(timeIntervalSince1970: t + 301))
        }
        // The signed timestamp lies in the future by more than the tolerance.
        #expect(throws: VerificationError.timestampOutsideTolerance) {
            try verify(header: V.header, now: Date(timeIntervalSince1970: t - 301))
        }
        let strict = TikTokVerifier(secrets: [Secret(V.secret)], tolerance: .seconds(10))
        _ = try verify(header: V.header, now: Date(timeIntervalSince1970: t + 10), verifier: strict)
        #expect(throws: VerificationError.timestampOutsideTolerance) {
            try verify(header: V.header, now: Date(timeIntervalSince1970: t + 11), verifier: strict)
        }
    }

    @Test func missingAndRepeatedHeaders() {
        #expect(throws: VerificationError.missingHeader("TikTok-Signature")) {
            try verifier.verify(body: V.bodyBytes, headers: [("Content-Type", "application/json")], now: V.now)
        }
        #expect(throws: VerificationError.malformedHeader("TikTok-Signature", "")) {
            try verifier.verify(
                body: V.bodyBytes,
                headers: [("TikTok-Signature", V.header), ("tiktok-signature", V.header)],
                now: V.now
            )
        }
    }

    @Test(arguments: [
        "",
        " ",
        "t=\(V.timestamp)",
        "s=\(V.signature)",
        "t=\(V.timestamp),s=\(V.signature),",
        ",t=\(V.timestamp),s=\(V.signature)",
        "t=\(V.timestamp),,s=\(V.signature)",
        "t=\(V.timestamp);s=\(V.signature)",
        "t=\(V.timestamp),t=\(V.timestamp),s=\(V.signature)",
        "t=,s=\(V.signature)",
        "t=\(V.timestamp),s=",
        "t=+\(V.timestamp),s=\(V.signature)",
        "t=-\(V.timestamp),s=\(V.signature)",
        "t=\(V.timestamp).0,s=\(V.signature)",
        "t=0001615338610,s=\(V.signature)",
        "t=\(V.timestamp),s=\(V.signature.uppercased())",
        "t=\(V.timestamp),s=\(V.signature.dropLast())",
        "t=\(V.timestamp),s=\(V.signature)0",
        "t=\(V.timestamp),s=0x\(V.signature.dropFirst(2))",
        "t=\(V.timestamp),S=\(V.signature)",
        "T=\(V.timestamp),s=\(V.signature)",
        "t=\(V.timestamp) s=\(V.signature)",
        "t=\(V.timestamp),s =\(V.signature)",
        "t=\(V.timestamp),=x,s=\(V.signature)",
        "sha256=\(V.signature)",
        V.signature,
        "t=\(V.timestamp)," + Array(repeating: "s=\(V.signature)", count: 17).joined(separator: ","),
    ])
    func rejectsMalformedHeaders(header: String) {
        #expect(throws: VerificationError.malformedHeader("TikTok-Signature", "")) { try verify(header: header) }
        // The check made before the body is read refuses the same headers.
        #expect(throws: VerificationError.malformedHeader("TikTok-Signature", "")) {
            try TikTokVerifier.checkHeader(in: [("TikTok-Signature", header)])
        }
    }

    /// Before the body, only the header's presence and form are checked: a stale timestamp or a
    /// wrong signature passes, to be refused by `verify` with the body.
    @Test func headerCheckLeavesToleranceAndSignatureToVerify() throws {
        let wrong = "t=\(V.timestamp),s=\(String(repeating: "0", count: 64))"
        let stale = "t=1,s=\(V.signature)"
        for header in [V.header, wrong, stale, " s=\(V.signature) , t=\(V.timestamp) "] {
            try WebhookVerifier.tiktok(secrets: [Secret(V.secret)]).checkHeader(headers: [("tiktok-signature", header)])
        }
        #expect(throws: VerificationError.noMatchingSignature) { try verify(header: wrong) }
        #expect(throws: VerificationError.timestampOutsideTolerance) { try verify(header: stale) }
        #expect(throws: VerificationError.missingHeader("TikTok-Signature")) { try TikTokVerifier.checkHeader(in: []) }
        #expect(throws: VerificationError.malformedHeader("TikTok-Signature", "")) {
            try TikTokVerifier.checkHeader(in: [("TikTok-Signature", V.header), ("tiktok-signature", V.header)])
        }
    }

    @Test func errorsNeverContainSecretsOrSignatures() {
        let wrong = String(repeating: "0", count: 64)
        let headers = ["t=\(V.timestamp),s=\(wrong)", "t=1,s=\(V.signature)", "garbage \(V.signature)", ""]
        for header in headers {
            do {
                _ = try verify(header: header)
                Issue.record("verified \(header)")
            } catch {
                let text = "\(error) \(String(reflecting: error))"
                #expect(!text.contains(V.secret))
                #expect(!text.contains(V.signature))
                #expect(!text.contains(wrong))
            }
        }
    }

    @Test func secretsAreRedactedWhenPrinted() {
        let secret = Secret(V.secret)
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
        #expect(!String(reflecting: verifier).contains(V.secret))
    }
}

func hexBytes(_ text: String) -> [UInt8] {
    let digits = Array(text.utf8)
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}
