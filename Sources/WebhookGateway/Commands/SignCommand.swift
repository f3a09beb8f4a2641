import ArgumentParser
import Foundation

/// `webhook-gateway sign`: prints the signature header TikTok would send with a body.
struct SignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Print the signature header (TikTok-Signature or Authorization) for a body.",
        discussion: """
            Examples:
              webhook-gateway sign --scheme tiktok --secret env:TIKTOK_CLIENT_SECRET --body-file event.json
              webhook-gateway sign --config config.json --source tiktok-shop --body-file order.json --value-only
            """
    )

    @OptionGroup var signing: SigningOptions

    @Option(name: .long, help: "The body to sign, as text.")
    var body: String?

    @Option(name: .long, help: "A file with the body to sign (- for standard input).")
    var bodyFile: String?

    @Option(name: .long, help: "The unix time to sign with (tiktok; default: now).")
    var timestamp: Int64?

    @Flag(name: .long, help: "Print only the header's value.")
    var valueOnly = false

    func validate() throws {
        guard (body == nil) != (bodyFile == nil) else { throw ValidationError("give exactly one of --body and --body-file") }
    }

    func run() throws {
        let signing = try self.signing.resolve()
        let bytes = try Self.read(body: body, file: bodyFile)
        let header = signing.header(body: bytes, timestamp: timestamp ?? Int64(Date().timeIntervalSince1970))
        print(valueOnly ? header.value : "\(header.name): \(header.value)")
    }

    /// The exact bytes of `body`, or of `file` (`-` is standard input).
    static func read(body: String?, file: String?) throws -> [UInt8] {
        if let body { return Array(body.utf8) }
        guard let file else { return [] }
        if file == "-" { return Array(FileHandle.standardInput.readDataToEndOfFile()) }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ValidationError("cannot read --body-file \(file)")
        }
        return Array(data)
    }
}
