import Foundation
import Testing

@testable import Verification

struct TikTokShopVerifierTests {
    typealias V = Vectors.TikTokShop

    let verifier = TikTokShopVerifier(appKey: Secret(V.appKey), secrets: [Secret(V.appSecret)])

    func verify(_ authorization: String, body: [UInt8] = V.bodyBytes) throws(VerificationError) -> VerifiedRequest {
        try verifier.verify(body: body, headers: [("Authorization", authorization)])
    }

    @Test func acceptsIndependentVector() throws {
        #expect(try verify(V.signature).scheme == .tiktokShop)
        _ = try verifier.verify(body: V.bodyBytes, headers: [("authorization", " \(V.signature) ")])
    }

    @Test func rotationAndWrongKeys() throws {
        let rotating = TikTokShopVerifier(appKey: Secret(V.appKey), secrets: [Secret("newer"), Secret(V.appSecret)])
        _ = try rotating.verify(body: V.bodyBytes, headers: [("AUTHORIZATION", V.signature)])
        let wrongAppKey = TikTokShopVerifier(appKey: Secret("another_app"), secrets: [Secret(V.appSecret)])
        #expect(throws: VerificationError.noMatchingSignature) {
            try wrongAppKey.verify(body: V.bodyBytes, headers: [("Authorization", V.signature)])
        }
    }

    @Test func everySingleBitFlipFails() {
        let body = V.bodyBytes
        for index in body.indices {
            for bit in 0..<8 {
                var flipped = body
                flipped[index] ^= 1 << bit
                #expect(throws: VerificationError.self) { try verify(V.signature, body: flipped) }
            }
        }
        let header = Array(V.signature.utf8)
        for index in header.indices {
            for bit in 0..<8 {
                var flipped = header
                flipped[index] ^= 1 << bit
                #expect(throws: VerificationError.self) { try verify(String(decoding: flipped, as: UTF8.self)) }
            }
        }
    }

    @Test(arguments: [
        "",
        "Bearer \(V.signature)",
        "sha256=\(V.signature)",
        V.signature.uppercased(),
        String(V.signature.dropLast()),
        V.signature + "00",
        "\(V.signature),\(V.signature)",
    ])
    func rejectsMalformedHeaders(header: String) {
        #expect(throws: VerificationError.malformedHeader("Authorization", "")) { try verify(header) }
        // The check made before the body is read refuses the same headers.
        #expect(throws: VerificationError.malformedHeader("Authorization", "")) {
            try TikTokShopVerifier.checkHeader(in: [("Authorization", header)])
        }
    }

    @Test func missingHeader() {
        #expect(throws: VerificationError.missingHeader("Authorization")) {
            try verifier.verify(body: V.bodyBytes, headers: [])
        }
        #expect(throws: VerificationError.missingHeader("Authorization")) { try TikTokShopVerifier.checkHeader(in: []) }
    }

    @Test func headerCheckLeavesTheSignatureToVerify() throws {
        let wrong = String(repeating: "0", count: 64)
        let shop = WebhookVerifier.tiktokShop(appKey: Secret(V.appKey), secrets: [Secret(V.appSecret)])
        for header in [V.signature, wrong, " \(V.signature)\t"] {
            try shop.checkHeader(headers: [("authorization", header)])
        }
        #expect(throws: VerificationError.noMatchingSignature) { try verify(wrong) }
    }

    @Test func webhookVerifierDispatchesByScheme() throws {
        let shop = WebhookVerifier.tiktokShop(appKey: Secret(V.appKey), secrets: [Secret(V.appSecret)])
        #expect(shop.scheme == .tiktokShop)
        #expect(shop.signatureHeaderNames == ["authorization"])
        _ = try shop.verify(body: V.bodyBytes, headers: [("Authorization", V.signature)], now: .now)
        let tiktok = WebhookVerifier.tiktok(secrets: [Secret(Vectors.TikTok.secret)])
        #expect(tiktok.scheme == .tiktok)
        _ = try tiktok.verify(
            body: Vectors.TikTok.bodyBytes,
            headers: [("TikTok-Signature", Vectors.TikTok.header)],
            now: Vectors.TikTok.now
        )
        #expect(SignatureScheme(name: "tiktok-shop") == .tiktokShop)
        #expect(SignatureScheme(name: "tiktok") == .tiktok)
        #expect(SignatureScheme(name: "stripe") == nil)
    }
}
