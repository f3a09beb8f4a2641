public import Foundation

/// The verifier of one configured source, whatever its scheme.
///
/// ```swift
/// let verifier = WebhookVerifier.tiktok(secrets: [Secret("client_secret_example")])
/// let verified = try verifier.verify(body: body, headers: headers, now: .now)
/// ```
public struct WebhookVerifier: Sendable {
    private enum Base: Sendable {
        case tiktok(TikTokVerifier)
        case tiktokShop(TikTokShopVerifier)
    }

    private let base: Base

    /// The `tiktok` scheme with the given secrets (any one may match) and timestamp tolerance.
    public static func tiktok(
        secrets: [Secret],
        tolerance: Duration = TikTokVerifier.defaultTolerance
    ) -> WebhookVerifier {
        WebhookVerifier(base: .tiktok(TikTokVerifier(secrets: secrets, tolerance: tolerance)))
    }

    /// The `tiktok-shop` scheme with the app key and the app secrets (any one may match).
    public static func tiktokShop(appKey: Secret, secrets: [Secret]) -> WebhookVerifier {
        WebhookVerifier(base: .tiktokShop(TikTokShopVerifier(appKey: appKey, secrets: secrets)))
    }

    /// The scheme this verifier checks.
    public var scheme: SignatureScheme {
        switch base {
        case .tiktok: .tiktok
        case .tiktokShop: .tiktokShop
        }
    }

    /// The lowercase names of the headers that carry this scheme's signature, for log redaction.
    public var signatureHeaderNames: [String] {
        switch base {
        case .tiktok: [TikTokVerifier.headerName]
        case .tiktokShop: [TikTokShopVerifier.headerName]
        }
    }

    /// Verifies the raw `body` against the signature header in `headers`, at time `now`.
    public func verify(
        body: some DataProtocol,
        headers: some Sequence<(String, String)>,
        now: Date
    ) throws(VerificationError) -> VerifiedRequest {
        try check(body: body, headers: headers, now: now)
    }

    /// The same, for the types the gateway has on its request path. A generic public function
    /// called from another module runs unspecialized (every byte and header through witness
    /// tables and runtime metadata lookups); this one is specialized here, once.
    public func verify(body: Data, headers: [(String, String)], now: Date) throws(VerificationError) -> VerifiedRequest {
        try check(body: body, headers: headers, now: now)
    }

    /// Checks that the signature header is present and has the scheme's form (`tiktok`: the
    /// `TikTok-Signature` elements; `tiktok-shop`: `Authorization` of 64 lowercase hex digits),
    /// without the body or the clock, so that a request failing it can be refused before its body
    /// is read. `verify(body:headers:now:)` repeats the check and adds the tolerance and the
    /// signature itself.
    ///
    /// ```swift
    /// try verifier.checkHeader(headers: headers)  // before reading the body
    /// let body = try await readBody()
    /// let verified = try verifier.verify(body: body, headers: headers, now: .now)
    /// ```
    public func checkHeader(headers: [(String, String)]) throws(VerificationError) {
        switch base {
        case .tiktok: try TikTokVerifier.checkHeader(in: headers)
        case .tiktokShop: try TikTokShopVerifier.checkHeader(in: headers)
        }
    }

    private func check(
        body: some DataProtocol,
        headers: some Sequence<(String, String)>,
        now: Date
    ) throws(VerificationError) -> VerifiedRequest {
        switch base {
        case .tiktok(let verifier): try verifier.verify(body: body, headers: headers, now: now)
        case .tiktokShop(let verifier): try verifier.verify(body: body, headers: headers)
        }
    }
}
