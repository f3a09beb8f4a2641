import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Verification

/// Helpers of the tests that run the built binary at its edge: folders, certificates, external
/// tools (openssl, curl, python3) and signed traffic over HTTP or HTTPS.
enum Edge {
    static let secret = "edge-test-tiktok-secret-7Hq2"
    static let signingSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let adminToken = "edge-test-admin-token-0123"

    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func temporaryDirectory(_ name: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wg-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `executable` to its end (found on PATH unless absolute) and returns what it printed.
    ///
    /// Nothing here blocks a thread of Swift's cooperative pool (two on this machine): the output
    /// goes to files, and the exit is awaited through the termination handler. Blocking reads would
    /// stall every other task of the test process for as long as the child runs.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, in directory: URL? = nil)
        async throws -> Output
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = directory }
        let files = FileManager.default.temporaryDirectory.appendingPathComponent("run-\(UUID().uuidString)")
        let out = files.appendingPathExtension("out")
        let err = files.appendingPathExtension("err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        let outHandle = try FileHandle(forWritingTo: out)
        let errHandle = try FileHandle(forWritingTo: err)
        process.standardOutput = outHandle
        process.standardError = errHandle
        process.standardInput = FileHandle.nullDevice
        let status = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int32, any Error>) in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        try? outHandle.close()
        try? errHandle.close()
        return Output(
            status: status,
            stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? ""
        )
    }

    /// A self-signed certificate for 127.0.0.1 with common name `name`: (chain, key) file paths.
    static func makeCertificate(in directory: URL, name: String) async throws -> (chain: String, key: String) {
        let chain = directory.appendingPathComponent("\(name).crt").path
        let key = directory.appendingPathComponent("\(name).key").path
        let result = try await run(
            "openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                "-keyout", key, "-out", chain, "-subj", "/CN=\(name)", "-addext", "subjectAltName=IP:127.0.0.1",
            ])
        guard result.status == 0 else { throw EdgeError("openssl req failed: \(result.stderr)") }
        return (chain, key)
    }

    /// The common name of the certificate a TLS listener presents now.
    static func presentedCommonName(port: Int) async throws -> String {
        let result = try await run(
            "python3",
            [
                "-c",
                """
                import socket, ssl, sys
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE
                with socket.create_connection(("127.0.0.1", \(port)), timeout=5) as raw:
                    with context.wrap_socket(raw) as tls:
                        der = tls.getpeercert(binary_form=True)
                sys.stdout.write(ssl.DER_cert_to_PEM_cert(der))
                """,
            ])
        let pem = FileManager.default.temporaryDirectory.appendingPathComponent("peer-\(UUID().uuidString).pem")
        try result.stdout.write(to: pem, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: pem) }
        let subject = try await run("openssl", ["x509", "-noout", "-subject", "-in", pem.path])
        // "subject=CN = name"
        return subject.stdout.components(separatedBy: "CN = ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    /// A client that accepts the tests' self-signed certificates.
    static let insecureClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        configuration.tlsConfiguration = tls
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    static func tiktokBody(orderID: String) -> String {
        #"{"client_key":"k","event":"minis.trade_order.redeem.success","create_time":1,"user_openid":"","content":"{\"order_id\":\"\#(orderID)\"}"}"#
    }

    /// POSTs a signed event for `orderID` on a new connection; returns the status and body.
    static func send(
        orderID: String,
        secret: String = Edge.secret,
        url: String,
        client: HTTPClient = Edge.insecureClient
    ) async throws -> (status: Int, text: String) {
        let body = tiktokBody(orderID: orderID)
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(
            name: "TikTok-Signature",
            value: TikTokSigner.tiktokSignature(
                secret: Secret(secret), timestamp: Int64(Date().timeIntervalSince1970), body: Array(body.utf8))
        )
        // A new connection each time: under an idle-connection flood a pooled one may be the one evicted.
        request.headers.add(name: "Connection", value: "close")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await client.execute(request, timeout: .seconds(10))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 16))
        return (Int(response.status.code), text)
    }

    /// The configuration of the edge tests: one tiktok source, one consumer, `extra` top-level keys
    /// (JSON text, each line ending in a comma). `secrets` and `adminToken` are secret references.
    static func writeConfig(
        in directory: URL,
        secrets: [String] = [Edge.secret],
        listen: String = #""host": "127.0.0.1", "port": 0"#,
        adminToken: String = Edge.adminToken,
        admin: String = "",
        consumerURL: String = "http://127.0.0.1:9/",
        consumerExtra: String = "",
        extra: String = ""
    ) throws -> String {
        let config = """
            {
              "listen": { \(listen) },
              "admin": { "host": "127.0.0.1", "port": 0, "token": "\(adminToken)"\(admin) },
              "storage": { "path": "gateway.sqlite" },
              "deadLetters": { "directory": "dead-letters" },
              \(extra)
              "sources": [ { "name": "tiktok", "path": "/webhooks/tiktok", "scheme": "tiktok", "secrets": [\(secrets.map { "\"\($0)\"" }.joined(separator: ", "))] } ],
              "consumers": [ { "name": "orders", "url": "\(consumerURL)", "signingSecret": "\(signingSecret)"\(consumerExtra) } ]
            }
            """
        let path = directory.appendingPathComponent("config.json").path
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The resident memory of process `pid` in MB (`VmRSS` in `/proc/<pid>/status`), or nil if it
    /// cannot be read (the process has gone).
    static func residentMegabytes(pid: Int32) -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            // "VmRSS:\t  123456 kB"
            guard let kilobytes = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap({ Double($0) })
            else { return nil }
            return kilobytes / 1_024
        }
        return nil
    }

    /// Repeats `check` until it is true or `timeout` passes; for state that another process
    /// changes (a reload after SIGHUP). Returns whether it became true.
    static func eventually(timeout: Duration = .seconds(10), _ check: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await check() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return try await check()
    }
}

struct EdgeError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A long-running child process (the example consumer) with its output in a file.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let log: URL

    init(_ executable: URL, _ arguments: [String], environment: [String: String], log: URL) throws {
        self.log = log
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}
