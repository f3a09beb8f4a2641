import Crypto
public import Foundation

/// Verifies the `tiktok` scheme: `TikTok-Signature: t=<unix seconds>,s=<hex>`.
///
/// The signed bytes are the timestamp exactly as sent, a `.`, and the raw body, MACed with
/// HMAC-SHA256 keyed by the client secret. A request verifies when its timestamp is within
/// `tolerance` of now (past or future, the bound itself included) and any `s=` value matches the
/// MAC under any configured secret (so a secret can be rotated by listing the old and the new one).
///
/// ```swift
/// let verifier = TikTokVerifier(secrets: [Secret("client_secret_example")])
/// try verifier.verify(body: body, headers: [("TikTok-Signature", header)], now: .now)
/// ```
public struct TikTokVerifier: Sendable {
    /// The header name, lowercase.
    public static let headerName = "tiktok-signature"
    /// The tolerance TikTok's own documentation suggests.
    public static let defaultTolerance: Duration = .seconds(300)
    /// More `s=` values than this in one header is treated as malformed.
    static let maximumSignatures = 16

    /// One keyed HMAC per secret, keyed once here: each verification copies one (a value type)
    /// instead of deriving the padded keys again.
    private let authenticators: [HMAC<SHA256>]
    private let toleranceSeconds: Double

    public init(secrets: [Secret], tolerance: Duration = TikTokVerifier.defaultTolerance) {
        precondition(!secrets.isEmpty, "at least one secret is needed")
        self.authenticators = secrets.map { HMAC<SHA256>(key: SymmetricKey(data: $0.bytes)) }
        let (seconds, attoseconds) = tolerance.components
        self.toleranceSeconds = Double(seconds) + Double(attoseconds) / 1e18
    }

    /// Verifies `body` against the `TikTok-Signature` header found in `headers` (name in any case).
    ///
    /// - Returns: proof of verification, which ``Envelope/parse(body:source:verified:)`` asks for.
    /// - Throws: ``VerificationError``; it never contains a secret or a signature.
    public func verify(
        body: some DataProtocol,
        headers: some Sequence<(String, String)>,
        now: Date
    ) throws(VerificationError) -> VerifiedRequest {
        var header = try Self.header(in: headers)
        let result = header.withUTF8 { bytes in
            Result { () throws(VerificationError) in try verify(body: body, header: bytes, now: now) }
        }
        return try result.get()
    }

    /// Checks that the `TikTok-Signature` header is present once and well formed, without the body
    /// or the clock: what can be refused before a body is read. The tolerance and the signature
    /// itself are checked by ``verify(body:headers:now:)``, which repeats this check.
    public static func checkHeader(in headers: some Sequence<(String, String)>) throws(VerificationError) {
        var header = try Self.header(in: headers)
        let result = header.withUTF8 { bytes in
            Result { () throws(VerificationError) in _ = try parse(header: bytes) }
        }
        try result.get()
    }

    private static func header(in headers: some Sequence<(String, String)>) throws(VerificationError) -> String {
        switch HeaderLookup.find("tiktok-signature", in: headers) {
        case .absent: throw .missingHeader(headerDisplayName)
        case .repeated: throw .malformedHeader(headerDisplayName, "header repeated")
        case .found(let value): return value
        }
    }

    private static var headerDisplayName: String { "TikTok-Signature" }

    /// The header's form: one `t` of unix seconds, 1 to ``maximumSignatures`` `s` values of 64
    /// lowercase hex digits. Returns the timestamp as sent (the signed bytes) and its value.
    private static func parse(
        header: UnsafeBufferPointer<UInt8>
    ) throws(VerificationError) -> (digits: UnsafeBufferPointer<UInt8>, timestamp: Int64) {
        let name = headerDisplayName
        var timestampDigits: UnsafeBufferPointer<UInt8>?
        var signatureCount = 0
        try SignatureElements.forEach(in: header, headerName: name) { key, value throws(VerificationError) in
            if SignatureElements.isKey(key, "t") {
                guard timestampDigits == nil else { throw .malformedHeader(name, "more than one t") }
                timestampDigits = value
            } else if SignatureElements.isKey(key, "s") {
                guard Hex.isHex(value, byteCount: SHA256.byteCount) else {
                    throw .malformedHeader(name, "s is not 64 hex digits")
                }
                signatureCount += 1
            }
        }
        guard let timestampDigits else { throw .malformedHeader(name, "no t") }
        guard signatureCount > 0 else { throw .malformedHeader(name, "no s") }
        guard signatureCount <= Self.maximumSignatures else { throw .malformedHeader(name, "too many s") }
        guard let timestamp = SignatureElements.unixSeconds(timestampDigits) else {
            throw .malformedHeader(name, "t is not unix seconds")
        }
        return (timestampDigits, timestamp)
    }

    private func verify(
        body: some DataProtocol,
        header: UnsafeBufferPointer<UInt8>,
        now: Date
    ) throws(VerificationError) -> VerifiedRequest {
        let name = Self.headerDisplayName
        let (timestampDigits, timestamp) = try Self.parse(header: header)
        guard abs(now.timeIntervalSince1970 - Double(timestamp)) <= toleranceSeconds else {
            throw .timestampOutsideTolerance
        }

        for authenticator in authenticators {
            var hmac = authenticator
            hmac.update(data: UnsafeRawBufferPointer(timestampDigits))
            withUnsafeBytes(of: UInt8(ascii: ".")) { hmac.update(data: $0) }
            hmac.update(data: body)
            let mac = hmac.finalize()
            var matched = false
            mac.withUnsafeBytes { macBytes in
                try? SignatureElements.forEach(in: header, headerName: name) { key, value in
                    if SignatureElements.isKey(key, "s") && Hex.constantTimeEquals(hex: value, bytes: macBytes) {
                        matched = true
                    }
                }
            }
            if matched { return VerifiedRequest(scheme: .tiktok, timestamp: timestamp) }
        }
        throw .noMatchingSignature
    }
}
