import Foundation
import FuzzDriver
import Verification

@testable import GatewayConfiguration

// Fuzzes the configuration reader: `GatewayConfiguration.parse` on the input as a configuration
// document, and the secret audit of `check-config` on the same document.
//
// Secrets come from a fixed environment and from files in a temporary folder made at start: an
// input whose `file:` reference could leave that folder (a path with a `/`) is skipped, so that a
// run never reads the machine's own files. Besides "no crash", each run checks what the reader
// promises: a configuration it accepts keeps every bound the reader documents, and no error or
// audit finding contains a secret's value.

/// Values that only the environment and the secret files hold, so that one found in a message is a
/// leak. The signing secret is a Standard Webhooks key (24 bytes after `whsec_`).
let environmentSecrets = [
    "TIKTOK_CLIENT_SECRET": "tiktok-client-secret-Q7x2vR",
    "TIKTOK_SHOP_APP_KEY": "shop-app-key-K3p9wZ",
    "TIKTOK_SHOP_APP_SECRET": "shop-app-secret-M8c4nT",
    "ORDERS_SIGNING_SECRET": "whsec_ZnV6ei1zaWduaW5nLXNlY3JldC1INXEx",
    "WEBHOOK_GATEWAY_ADMIN_TOKEN": "admin-token-of-some-length-J2d6",
]
let fileSecrets = [
    "secret.txt": "file-secret-value-B5h7\n",
    "signing.txt": "whsec_ZnV6ei1maWxlLXNpZ25pbmctc2VjcmV0LVc4ZTI=\r\n",
    "empty.txt": "",
]
let credentialSecrets = ["admin-token": "credential-admin-token-Y4g8", "tiktok": "credential-tiktok-secret-L1s3"]

/// The folder the configuration is read from, with the secret files and a credentials folder; in
/// `TMPDIR`, which `scripts/fuzz.sh` removes after the run.
let folder: URL = {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-configuration-\(getpid())")
    let credentials = folder.appendingPathComponent("credentials")
    try! FileManager.default.createDirectory(at: credentials, withIntermediateDirectories: true)
    for (name, value) in fileSecrets { try! Data(value.utf8).write(to: folder.appendingPathComponent(name)) }
    for (name, value) in credentialSecrets { try! Data(value.utf8).write(to: credentials.appendingPathComponent(name)) }
    return folder
}()

let environment = environmentSecrets.merging(
    ["EMPTY": "", "CREDENTIALS_DIRECTORY": folder.appendingPathComponent("credentials").path]
) { first, _ in first }

/// Every secret value, as the reader resolves it (a file's trailing line break trimmed).
let secretValues: [String] =
    Array(environmentSecrets.values) + fileSecrets.values.map { $0.trimmingCharacters(in: .newlines) }.filter { !$0.isEmpty }
    + Array(credentialSecrets.values)

func fuzz(_ input: [UInt8]) {
    let data = Data(input)
    // The same decoding as the reader's: skip a document that names a file outside the folder.
    if let document = try? JSONDecoder().decode(JSONValue.self, from: data), !staysInFolder(document) { return }

    do {
        let configuration = try GatewayConfiguration.parse(data: data, baseDirectory: folder, environment: environment)
        checkBounds(configuration)
    } catch {
        checkNoSecret(in: error.description)
    }
    for finding in SecretAudit.audit(data: data, baseDirectory: folder, environment: environment) {
        checkNoSecret(in: finding.description)
    }
}

/// Whether every `file:` reference in the document is a plain name in the configuration's folder.
func staysInFolder(_ value: JSONValue) -> Bool {
    switch value {
    case .string(let text):
        guard text.hasPrefix("file:") else { return true }
        let name = text.dropFirst(5)
        return !name.contains("/") && !name.contains("\0") && name != "." && name != ".."
    case .array(let items): return items.allSatisfy(staysInFolder)
    case .object(let fields): return fields.values.allSatisfy(staysInFolder)
    default: return true
    }
}

func checkNoSecret(in message: String) {
    for value in secretValues where message.contains(value) {
        fatalError("a message contains a secret: \(message)")
    }
}

/// The bounds `GatewayConfiguration` documents for what it accepts.
func checkBounds(_ configuration: GatewayConfiguration) {
    precondition((0...65_535).contains(configuration.listen.port) && (0...65_535).contains(configuration.admin.port))
    precondition(!configuration.listen.host.isEmpty && !configuration.admin.host.isEmpty)
    precondition(configuration.admin.token.bytes.count >= 16, "a short admin token")
    precondition((1...(256 * 1_048_576)).contains(configuration.maxBodyBytes))
    precondition(configuration.bufferedBodyBytes >= 2 * configuration.maxBodyBytes, "a body budget below two bodies")
    precondition(configuration.dedupRetention >= GatewayConfiguration.minimumDedupRetention)
    precondition(configuration.eventRetention >= GatewayConfiguration.minimumEventRetention)
    let connections = configuration.limits.connections
    precondition(connections.readTimeout >= .milliseconds(100) && connections.idleTimeout <= .seconds(3_600))
    if let rate = configuration.limits.rateLimit { precondition(rate.requestsPerSecond >= 1 && rate.burst >= 1) }

    precondition(!configuration.sources.isEmpty, "no source")
    precondition(Set(configuration.sources.map(\.name)).count == configuration.sources.count, "duplicate source names")
    precondition(Set(configuration.sources.map(\.path)).count == configuration.sources.count, "duplicate source paths")
    for source in configuration.sources {
        precondition(isName(source.name), "a source name outside the allowed characters")
        precondition(source.path.hasPrefix("/") && source.path != "/healthz", "a source path that is not a URL path")
        precondition(!source.secrets.isEmpty && source.secrets.allSatisfy { !$0.isEmpty }, "a source without secrets")
        precondition(source.tolerance > .zero && source.tolerance <= configuration.dedupRetention, "a tolerance out of range")
        precondition((source.scheme == .tiktokShop) == (source.appKey != nil), "an app key on the wrong scheme")
        _ = source.verifier
    }
    let sourceNames = Set(configuration.sources.map(\.name))
    precondition(Set(configuration.consumers.map(\.name)).count == configuration.consumers.count, "duplicate consumer names")
    for consumer in configuration.consumers {
        precondition(isName(consumer.name), "a consumer name outside the allowed characters")
        precondition(["http", "https"].contains(consumer.url.scheme?.lowercased()), "a consumer URL that is not http")
        precondition((consumer.sources ?? []).allSatisfy(sourceNames.contains), "a consumer of an unknown source")
        precondition(consumer.timeout > .zero && (1...1_024).contains(consumer.concurrency))
        precondition(consumer.retry.initialDelay > .zero && consumer.retry.maxDelay >= consumer.retry.initialDelay)
        precondition((1...1_000).contains(consumer.retry.maxAttempts))
        _ = consumer.endpoint
    }
}

/// 1 to 64 of `A–Z a–z 0–9 . _ -`, not starting with `_` or `.` (consumer names become file names).
func isName(_ name: String) -> Bool {
    let allowed = name.utf8.allSatisfy { byte in
        (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte)
            || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
    }
    return allowed && (1...64).contains(name.utf8.count) && !name.hasPrefix("_") && !name.hasPrefix(".")
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzz(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

@_cdecl("FuzzConfiguration_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    _ = folder
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOne(data, size) }
}
