import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import Verification

@testable import WebhookGateway

/// Collects log records in memory.
final class CapturedLogs: @unchecked Sendable {
    struct Record {
        let level: Logger.Level
        let message: String
        let metadata: Logger.Metadata
    }

    private let lock = NSLock()
    private var storage: [Record] = []

    var records: [Record] { lock.withLock { storage } }

    func append(_ record: Record) { lock.withLock { storage.append(record) } }

    var logger: Logger {
        Logger(label: "test") { _ in Handler(logs: self) }
    }

    struct Handler: LogHandler {
        let logs: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            logs.append(Record(level: event.level, message: "\(event.message)", metadata: metadata.merging(event.metadata ?? [:]) { $1 }))
        }
    }
}

struct LoggingTests {
    @Test func requestLinesCarryTheRequestIDAndNoSecrets() async throws {
        let fixture = try GatewayFixture()
        let logs = CapturedLogs()
        let responder = fixture.makeResponder()
        let app = Application(responder: responder, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logs.logger)
        let event = GatewayFixture.tiktokEvent(orderID: "logged")
        try await app.test(.router) { client in
            for signature in [event.signature, event.signature, "t=1615338610,s=" + String(repeating: "0", count: 64)] {
                _ = try await client.execute(
                    uri: "/webhooks/tiktok",
                    method: .post,
                    headers: [.init("TikTok-Signature")!: signature],
                    body: ByteBuffer(string: event.body)
                )
            }
        }
        let requestLines = logs.records.filter {
            ["event accepted", "duplicate event", "signature rejected", "request received"].contains($0.message)
        }
        #expect(
            Set(requestLines.map(\.message)).isSuperset(of: ["event accepted", "duplicate event", "signature rejected", "request received"])
        )
        for record in requestLines {
            #expect(record.metadata["hb.request.id"] != nil, "\(record.message) has no request id")
        }
        let everything = logs.records.map { "\($0.message) \($0.metadata)" }.joined(separator: "\n")
        #expect(!everything.contains(GatewayFixture.secret))
        #expect(!everything.contains(String(event.signature.dropFirst(15))))
        #expect(everything.contains("<redacted>"))
    }
}
