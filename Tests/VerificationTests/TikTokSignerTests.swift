import Testing

@testable import Verification

struct TikTokSignerTests {
    @Test func reproducesIndependentVectors() {
        let tiktok = TikTokSigner.tiktokSignature(
            secret: Secret(Vectors.TikTok.secret),
            timestamp: Vectors.TikTok.timestamp,
            body: Vectors.TikTok.bodyBytes
        )
        #expect(tiktok == Vectors.TikTok.header)
        let shop = TikTokSigner.tiktokShopAuthorization(
            appKey: Secret(Vectors.TikTokShop.appKey),
            secret: Secret(Vectors.TikTokShop.appSecret),
            body: Vectors.TikTokShop.bodyBytes
        )
        #expect(shop == Vectors.TikTokShop.signature)
    }
}
