import ArgumentParser
import Foundation
import GatewayConfiguration
import Verification

/// How the developer tools find the secret to sign with: a source of a configuration file, or a
/// scheme and secrets given on the command line (as `env:NAME`, `file:PATH`, `credential:NAME` or,
/// for throwaway test secrets only, a literal).
struct SigningOptions: ParsableArguments {
    @Option(name: .long, help: "A gateway configuration; sign as its source --source does.")
    var config: String?

    @Option(name: .long, help: "The source of --config to sign for (default: the first one).")
    var source: String?

    @Option(name: .long, help: "tiktok or tiktok-shop (without --config; default tiktok).")
    var scheme: String?

    @Option(
        name: .long,
        help: """
            The signing secret: env:NAME, file:PATH, credential:NAME or a literal (without --config; default \
            env:TIKTOK_CLIENT_SECRET, or env:TIKTOK_SHOP_APP_SECRET for tiktok-shop).
            """)
    var secret: String?

    @Option(
        name: .long,
        help:
            "The TikTok Shop app key: env:NAME, file:PATH, credential:NAME or a literal (tiktok-shop without --config; default env:TIKTOK_SHOP_APP_KEY)."
    )
    var appKey: String?

    /// What to sign with, and where the configured source listens.
    struct Signing {
        var scheme: SignatureScheme
        var secret: Secret
        var appKey: Secret?
        /// The source's URL on the configured listener, when signing for a configured source.
        var url: String?
    }

    func validate() throws {
        if config != nil, scheme != nil || secret != nil || appKey != nil {
            throw ValidationError("--scheme, --secret and --app-key do not go with --config")
        }
    }

    func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Signing {
        if let config {
            let configuration: GatewayConfiguration
            do {
                configuration = try GatewayConfiguration.load(path: config, environment: environment)
            } catch {
                throw ValidationError("invalid configuration: \(error)")
            }
            let chosen = source.map { name in configuration.sources.first { $0.name == name } } ?? configuration.sources.first
            guard let chosen else { throw ValidationError("the configuration has no source named \(source ?? "")") }
            let host = AdminAccess.urlHost(listeningOn: configuration.listen.host)
            let scheme = configuration.listen.tls == nil ? "http" : "https"
            return Signing(
                scheme: chosen.scheme,
                secret: chosen.secrets[0],
                appKey: chosen.appKey,
                url: "\(scheme)://\(host):\(configuration.listen.port)\(chosen.path)"
            )
        }
        guard let scheme = SignatureScheme(name: self.scheme ?? "tiktok") else {
            throw ValidationError("--scheme must be tiktok or tiktok-shop")
        }
        // The defaults are the variables the example configuration reads.
        let isShop = scheme == .tiktokShop
        let secret = try Self.secret(
            self.secret ?? (isShop ? "env:TIKTOK_SHOP_APP_SECRET" : "env:TIKTOK_CLIENT_SECRET"), option: "--secret",
            environment: environment)
        var appKey: Secret?
        if isShop {
            appKey = try Self.secret(self.appKey ?? "env:TIKTOK_SHOP_APP_KEY", option: "--app-key", environment: environment)
        }
        return Signing(scheme: scheme, secret: secret, appKey: appKey, url: nil)
    }

    /// Resolves a secret reference as the configuration does (``SecretReference``, relative paths
    /// against the working folder); errors name the option, never the value.
    private static func secret(_ text: String, option: String, environment: [String: String]) throws -> Secret {
        do {
            return try SecretReference(parsing: text).resolve(
                baseDirectory: URL(fileURLWithPath: FileManager.default.currentDirectoryPath), environment: environment)
        } catch {
            throw ValidationError("\(option): \(error)")
        }
    }
}

extension SigningOptions.Signing {
    /// The header TikTok would send with `body`: its name and value.
    func header(body: [UInt8], timestamp: Int64) -> (name: String, value: String) {
        if scheme == .tiktokShop {
            return ("Authorization", TikTokSigner.tiktokShopAuthorization(appKey: appKey ?? Secret(""), secret: secret, body: body))
        }
        return ("TikTok-Signature", TikTokSigner.tiktokSignature(secret: secret, timestamp: timestamp, body: body))
    }
}
