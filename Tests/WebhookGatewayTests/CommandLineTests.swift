import Foundation
import Testing

/// The `check-config` command of the built binary: exit status and messages.
struct CommandLineTests {
    func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        let result = try await Edge.run(GatewayProcess.binary.path, arguments, environment: environment)
        return (result.status, result.stderr + result.stdout)
    }

    @Test func checkConfigAcceptsTheExample() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let environment = [
            "TIKTOK_CLIENT_SECRET": "s", "TIKTOK_SHOP_APP_KEY": "k", "TIKTOK_SHOP_APP_SECRET": "s",
            "ORDERS_SIGNING_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "WEBHOOK_GATEWAY_ADMIN_TOKEN": "0123456789abcdef",
            "ORDERS_SANDBOX_SIGNING_SECRET": "whsec_c2FuZGJveC1zZWNyZXQtZm9yLXRoZS10ZXN0cw==",
            "OPS_SIGNING_SECRET": "whsec_b3BzLXNpZ25pbmctc2VjcmV0LWZvci10ZXN0cw==",
        ]
        let result = try await run(
            ["check-config", "--config", root.appendingPathComponent("config.example.json").path], environment: environment)
        #expect(result.status == 0, "\(result.output)")
        let lines = result.output.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("configuration ok") }, "\(result.output)")
        // One-letter secrets are valid but weak: reported by field, never by value, exit 0 unless --strict.
        #expect(lines.contains { $0.hasSuffix("weak secret: sources[0].secrets[0]: shorter than 16 bytes") })
        #expect(!result.output.contains("0123456789abcdef") && !result.output.contains("whsec_MfKQ"))
        let strict = try await run(
            ["check-config", "--strict", "--config", root.appendingPathComponent("config.example.json").path], environment: environment)
        #expect(strict.status == 3)
        // A missing variable is reported as a missing secret and fails the check.
        var missing = environment
        missing["TIKTOK_SHOP_APP_SECRET"] = nil
        let failed = try await run(
            ["check-config", "--config", root.appendingPathComponent("config.example.json").path], environment: missing)
        #expect(failed.status == 2)
        #expect(failed.output.contains("missing secret: sources[1].secrets[0]: environment variable TIKTOK_SHOP_APP_SECRET is not set"))
    }

    @Test func checkConfigNamesTheBadField() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wg-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("bad.json").path
        try """
        {"admin": {"token": "0123456789abcdef-secret-token"}, "dedup": {"retention": "48h"},
         "sources": [{"name": "t", "path": "/t", "scheme": "tiktok", "secrets": ["x"]}]}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try await run(["check-config", "--config", path])
        #expect(result.status != 0)
        #expect(result.output.contains("dedup.retention: must be at least 72h"))
        #expect(!result.output.contains("0123456789abcdef-secret-token"))

        let missing = try await run(["check-config", "--config", directory.appendingPathComponent("missing.json").path])
        #expect(missing.status != 0)
        #expect(missing.output.contains("cannot read configuration file"))
    }
}
