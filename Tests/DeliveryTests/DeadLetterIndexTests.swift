import Delivery
import Foundation
import Testing

/// The index the admin API reads dead-letter files through: one entry per id, complete lines
/// only, and a rotated file indexed anew.
struct DeadLetterIndexTests {
    func letter(_ id: String, type: String = "minis.trade_order.redeem.success") -> DeadLetter {
        DeadLetter(
            id: id, eventID: "evt_\(id)", consumer: "orders", source: "tiktok", eventType: type, dedupKey: "k:\(id)",
            receivedAt: Date(timeIntervalSince1970: 1_795_514_400), deadLetteredAt: Date(timeIntervalSince1970: 1_795_514_401),
            reason: "max attempts", attempts: [.init(at: Date(timeIntervalSince1970: 1_795_514_400.5), status: 503, error: nil)],
            headers: ["tiktok-signature": "t=1,s=00"], body: Data(#"{"id":"\#(id)"}"#.utf8))
    }

    @Test func indexesCompleteUniqueLinesAndFollowsRotation() throws {
        let directory = try TemporaryDirectory()
        let writer = DeadLetterWriter(directory: directory.path("dead-letters"))
        let index = DeadLetterIndex(writer: writer)
        #expect(index.entries(consumer: "orders").entries.isEmpty)

        try writer.append([letter("dl_a"), letter("dl_b", type: "other")], consumer: "orders")
        // The same line again (a crash before its delivery left the queue), a broken line, and a
        // line still being written (no newline yet).
        try writer.append([letter("dl_a")], consumer: "orders")
        let path = writer.path(consumer: "orders")
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{not json}\n".utf8))
        let partial = try DeadLetter.encoder.encode(letter("dl_c"))
        try handle.write(contentsOf: partial.prefix(40))
        let (entries, unreadable) = index.entries(consumer: "orders")
        #expect(entries.map(\.id) == ["dl_a", "dl_b"])
        #expect(entries.map(\.eventType) == ["minis.trade_order.redeem.success", "other"])
        #expect(unreadable == 1)
        #expect(index.load(entries.reversed(), consumer: "orders").map(\.id) == ["dl_b", "dl_a"])
        #expect(index.load(entries, consumer: "orders").first?.bodyBytes == Data(#"{"id":"dl_a"}"#.utf8))

        // The rest of the line arrives: indexed from where the index stopped.
        try handle.write(contentsOf: partial.dropFirst(40) + Data("\n".utf8))
        try handle.close()
        #expect(index.entries(consumer: "orders").entries.map(\.id) == ["dl_a", "dl_b", "dl_c"])

        // Rotated while running: the next dead letter starts a new file, indexed anew.
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        #expect(index.entries(consumer: "orders").entries.isEmpty)
        try writer.append([letter("dl_d")], consumer: "orders")
        #expect(index.entries(consumer: "orders").entries.map(\.id) == ["dl_d"])
        #expect(writer.read(consumer: "orders").deadLetters.map(\.id) == ["dl_d"])
    }

    @Test func linesLongerThanAReadSliceAreIndexed() throws {
        let directory = try TemporaryDirectory()
        let writer = DeadLetterWriter(directory: directory.path("dead-letters"))
        let index = DeadLetterIndex(writer: writer)
        // 9 MB of body: longer than the 4 MB slices the index reads.
        var big = letter("dl_big")
        big.body = String(repeating: "x", count: 9 << 20)
        try writer.append([letter("dl_small"), big, letter("dl_after")], consumer: "orders")
        let entries = index.entries(consumer: "orders").entries
        #expect(entries.map(\.id) == ["dl_small", "dl_big", "dl_after"])
        let loaded = index.load(entries, consumer: "orders")
        #expect(loaded.map(\.id) == ["dl_small", "dl_big", "dl_after"])
        #expect(loaded[1].body?.utf8.count == 9 << 20)
    }
}
