import GatewayConfiguration
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// A listener's certificate chain and private key, replaceable while the listener runs.
///
/// The TLS configuration it makes asks for the current pair during each handshake (through
/// NIOSSL's context callback), so ``reload()`` changes what new connections see while open
/// connections keep the session they negotiated. A reload that cannot read or match the files
/// throws and leaves the pair in use unchanged.
final class ReloadableCertificate: Sendable {
    struct Pair: Sendable {
        var chain: [NIOSSLCertificate]
        var key: NIOSSLPrivateKey
    }

    /// A certificate or key that cannot be used; names the file, never its contents.
    struct LoadError: Error, CustomStringConvertible {
        var description: String
    }

    let files: GatewayConfiguration.TLSFiles
    private let current: Mutex<Pair>

    init(files: GatewayConfiguration.TLSFiles) throws(LoadError) {
        self.files = files
        self.current = Mutex(try Self.load(files))
    }

    /// The pair handshakes use now.
    var pair: Pair { current.withLock { $0 } }

    /// Reads the files again and, if they make a usable pair, uses it for new handshakes.
    func reload() throws(LoadError) {
        use(try Self.load(files))
    }

    /// Uses `pair` (loaded and checked by ``load(_:)``) for new handshakes.
    func use(_ pair: Pair) {
        current.withLock { $0 = pair }
    }

    /// A server configuration whose certificate and key come from this holder at each handshake.
    func serverConfiguration() -> TLSConfiguration {
        let initial = pair
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: initial.chain.map { .certificate($0) },
            privateKey: .privateKey(initial.key)
        )
        configuration.minimumTLSVersion = .tlsv12
        configuration.sslContextCallback = { [self] _, promise in
            let pair = self.pair
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = pair.chain.map { .certificate($0) }
            override.privateKey = .privateKey(pair.key)
            promise.succeed(override)
        }
        return configuration
    }

    /// Loads and checks a pair: the chain parses, the key parses, and the key belongs to the
    /// chain's first certificate (checked by building a context from them).
    static func load(_ files: GatewayConfiguration.TLSFiles) throws(LoadError) -> Pair {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificateChain)
        } catch {
            throw LoadError(description: "cannot read the certificate chain \(files.certificateChain): \(error)")
        }
        guard !chain.isEmpty else {
            throw LoadError(description: "the certificate chain \(files.certificateChain) holds no PEM certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: files.privateKey, format: .pem)
        } catch {
            // NIOSSL's errors about keys do not quote the key; still, say only which file failed.
            throw LoadError(description: "cannot read the private key \(files.privateKey) (PEM expected)")
        }
        do {
            _ = try NIOSSLContext(
                configuration: .makeServerConfiguration(
                    certificateChain: chain.map { .certificate($0) },
                    privateKey: .privateKey(key)
                )
            )
        } catch {
            throw LoadError(
                description: "the private key \(files.privateKey) does not belong to the certificate in \(files.certificateChain)"
            )
        }
        return Pair(chain: chain, key: key)
    }
}
