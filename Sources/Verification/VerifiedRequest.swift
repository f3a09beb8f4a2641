/// Proof that a request's signature verified. Only the verifiers in this module create one, so
/// code that asks for it (``Envelope/parse(body:source:verified:)``) cannot run on unverified bytes.
public struct VerifiedRequest: Sendable, Hashable {
    /// The scheme that verified the request.
    public let scheme: SignatureScheme
    /// The signed timestamp, for schemes that carry one.
    public let timestamp: Int64?

    /// Bytes that this gateway verified when they arrived and then kept (a dead letter's body,
    /// read again before a replay): the proof was given then. Never for bytes from the network.
    package static func verifiedOnArrival(scheme: SignatureScheme) -> VerifiedRequest {
        VerifiedRequest(scheme: scheme, timestamp: nil)
    }
}

/// The signature schemes a source can use, named as in the configuration's `scheme` key.
public struct SignatureScheme: Sendable, Hashable, CustomStringConvertible {
    private enum Base: Hashable, Sendable {
        case tiktok
        case tiktokShop
    }

    private let base: Base

    /// `TikTok-Signature: t=…,s=…` over `t + "." + body`.
    public static let tiktok = SignatureScheme(base: .tiktok)
    /// `Authorization: <hex>` over `appKey + body`.
    public static let tiktokShop = SignatureScheme(base: .tiktokShop)

    /// Every scheme, in the order the configuration documents them.
    public static let all: [SignatureScheme] = [.tiktok, .tiktokShop]

    /// The configuration name: `tiktok` or `tiktok-shop`.
    public var name: String {
        switch base {
        case .tiktok: "tiktok"
        case .tiktokShop: "tiktok-shop"
        }
    }

    /// The scheme with configuration name `name`, if there is one.
    public init?(name: String) {
        guard let scheme = Self.all.first(where: { $0.name == name }) else { return nil }
        self = scheme
    }

    private init(base: Base) {
        self.base = base
    }

    public var description: String { name }
}
