import Foundation
import Testing

@testable import Verification

struct StandardWebhooksTests {
    typealias V = Vectors.StandardWebhooks

    func headers(id: String = V.id, timestamp: Int64 = V.timestamp, signature: String = V.signature) -> [(String, String)] {
        [("webhook-id", id), ("webhook-timestamp", String(timestamp)), ("webhook-signature", signature)]
    }

    @Test func signsIndependentVector() throws {
        let signer = try StandardWebhooksSigner(secret: Secret(V.secret))
        #expect(signer.signature(id: V.id, timestamp: V.timestamp, body: Array(V.body.utf8)) == V.signature)
    }

    @Test func verifiesIndependentVector() throws {
        let verifier = try StandardWebhooksVerifier(secret: Secret(V.secret))
        let id = try verifier.verify(body: Array(V.body.utf8), headers: headers(), now: V.now)
        #expect(id == V.id)
        let mixedCase = [("Webhook-Id", V.id), ("WEBHOOK-TIMESTAMP", String(V.timestamp)), ("Webhook-Signature", V.signature)]
        try verifier.verify(body: Array(V.body.utf8), headers: mixedCase, now: V.now)
    }

    @Test func anyOfSeveralSignaturesMatches() throws {
        let verifier = try StandardWebhooksVerifier(secret: Secret(V.secret))
        let several = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1a,abc \(V.signature)"
        try verifier.verify(body: Array(V.body.utf8), headers: headers(signature: several), now: V.now)
        #expect(throws: VerificationError.noMatchingSignature) {
            try verifier.verify(
                body: Array(V.body.utf8),
                headers: headers(signature: "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="),
                now: V.now
            )
        }
        #expect(throws: VerificationError.malformedHeader("webhook-signature", "")) {
            try verifier.verify(body: Array(V.body.utf8), headers: headers(signature: "v1a,\(V.signature.dropFirst(3))"), now: V.now)
        }
    }

    @Test func rejectsTamperingAndStaleTimestamps() throws {
        let verifier = try StandardWebhooksVerifier(secret: Secret(V.secret))
        let body = Array(V.body.utf8)
        #expect(throws: VerificationError.noMatchingSignature) {
            try verifier.verify(body: Array(#"{"test": 2432232315}"#.utf8), headers: headers(), now: V.now)
        }
        #expect(throws: VerificationError.noMatchingSignature) {
            try verifier.verify(body: body, headers: headers(id: "msg_other"), now: V.now)
        }
        let signature = Array(V.signature.utf8)
        for index in 3..<signature.count {
            for bit in 0..<8 {
                var flipped = signature
                flipped[index] ^= 1 << bit
                #expect(throws: VerificationError.self) {
                    try verifier.verify(body: body, headers: headers(signature: String(decoding: flipped, as: UTF8.self)), now: V.now)
                }
            }
        }
        let t = TimeInterval(V.timestamp)
        try verifier.verify(body: body, headers: headers(), now: Date(timeIntervalSince1970: t + 300))
        try verifier.verify(body: body, headers: headers(), now: Date(timeIntervalSince1970: t - 300))
        #expect(throws: VerificationError.timestampOutsideTolerance) {
            try verifier.verify(body: body, headers: headers(), now: Date(timeIntervalSince1970: t + 301))
        }
        #expect(throws: VerificationError.timestampOutsideTolerance) {
            try verifier.verify(body: body, headers: headers(), now: Date(timeIntervalSince1970: t - 301))
        }
        #expect(throws: VerificationError.missingHeader("webhook-id")) {
            try verifier.verify(body: body, headers: Array(headers().dropFirst()), now: V.now)
        }
    }

    @Test(arguments: [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_",
        "whsec_not base64!",
        "whsec_AAAA",
        "whsec_" + String(repeating: "A", count: 100),
    ])
    func rejectsUnusableSecrets(secret: String) {
        #expect(throws: StandardWebhooksKey.FormatError.self) { try StandardWebhooksSigner(secret: Secret(secret)) }
        do {
            _ = try StandardWebhooksSigner(secret: Secret(secret))
        } catch {
            #expect(!error.description.contains(secret.dropFirst(6)) || secret.count <= 6)
        }
    }

    @Test func generatedSecretsRoundTrip() throws {
        let secret = StandardWebhooksKey.generateSecret()
        let signer = try StandardWebhooksSigner(secret: secret)
        let verifier = try StandardWebhooksVerifier(secret: secret)
        let body = Array("{}".utf8)
        let signature = signer.signature(id: "evt_1", timestamp: V.timestamp, body: body)
        try verifier.verify(body: body, headers: headers(id: "evt_1", signature: signature), now: V.now)
    }
}
