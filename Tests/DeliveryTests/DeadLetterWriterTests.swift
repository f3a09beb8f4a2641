import Delivery
import Foundation
import Testing

/// Appends to dead-letter files: every line whole, even when the disk fills part-way through.
struct DeadLetterWriterTests {
    /// A line as SPEC.md's Dead letters section shows it, written by hand (not by the writer).
    static let specLine =
        #"{"id":"dl_01","eventId":"evt_01","consumer":"orders","source":"tiktok","eventType":"minis.trade_order.redeem.success","#
        + #""dedupKey":"tiktok:e:1","receivedAt":"2026-11-24T10:00:00Z","deadLetteredAt":"2026-11-24T10:05:00Z","#
        + #""reason":"max attempts","attempts":[{"at":"2026-11-24T10:00:01Z","status":500,"error":null}],"#
        + #""headers":{"tiktok-signature":"t=1,s=00"},"body":"{\"n\":1}"}"# + "\n"

    func letter(_ id: String, bodyBytes: Int) -> DeadLetter {
        DeadLetter(
            id: id, eventID: "evt_\(id)", consumer: "orders", source: "tiktok", eventType: "minis.trade_order.redeem.success",
            dedupKey: "k:\(id)", receivedAt: Date(timeIntervalSince1970: 1_795_514_400),
            deadLetteredAt: Date(timeIntervalSince1970: 1_795_514_401), reason: "max attempts",
            attempts: [.init(at: Date(timeIntervalSince1970: 1_795_514_400), status: 503, error: nil)],
            headers: ["tiktok-signature": "t=1,s=00"], body: Data(String(repeating: "x", count: bodyBytes).utf8))
    }

    @Test(.enabled(if: TmpfsMount.isPossible, "needs root and tmpfs to make a real full disk"))
    func appendThatFillsTheDiskLeavesTheFileAsItWas() throws {
        let directory = try TemporaryDirectory()
        let mount = try TmpfsMount(at: directory.path("disk"), sizeKiB: 256)
        defer { mount.unmount() }
        let writer = DeadLetterWriter(directory: mount.path + "/dead-letters")
        try FileManager.default.createDirectory(atPath: writer.directory, withIntermediateDirectories: true)
        let path = writer.path(consumer: "orders")
        #expect(FileManager.default.createFile(atPath: path, contents: Data(Self.specLine.utf8)))
        let before = try Data(contentsOf: URL(fileURLWithPath: path))

        // Fill every free page with a ballast file. The dead-letter file's last page still has
        // room for a few kilobytes, so a line of 16 KiB is written in part, then the disk is full.
        let ballast = mount.path + "/ballast"
        _ = FileManager.default.createFile(atPath: ballast, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: ballast))
        let page = Data(repeating: 0x61, count: 4_096)
        while (try? handle.write(contentsOf: page)) != nil {}
        while (try? handle.write(contentsOf: Data([0x61]))) != nil {}
        try? handle.close()

        #expect(throws: DeadLetterWriter.WriteError.self) {
            try writer.append([letter("dl_big", bodyBytes: 16 * 1_024)], consumer: "orders")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)

        // Once there is room again, the same dead letter is written whole, after the old line.
        try FileManager.default.removeItem(atPath: ballast)
        try writer.append([letter("dl_big", bodyBytes: 16 * 1_024)], consumer: "orders")
        let after = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(after.starts(with: before))
        #expect(after.last == UInt8(ascii: "\n"))
        let lines = after.split(separator: UInt8(ascii: "\n"))
        #expect(lines.count == 2)
        #expect(lines.compactMap { DeadLetter.read(line: $0)?.id } == ["dl_01", "dl_big"])
    }

    @Test func aLineCutOffByACrashDoesNotSpoilTheNextOne() throws {
        let directory = try TemporaryDirectory()
        let writer = DeadLetterWriter(directory: directory.path("dead-letters"))
        try FileManager.default.createDirectory(atPath: writer.directory, withIntermediateDirectories: true)
        let path = writer.path(consumer: "orders")
        // A whole line, then the first 40 bytes of another: the process died in the middle of a write.
        let cut = Self.specLine + String(Self.specLine.prefix(40))
        #expect(FileManager.default.createFile(atPath: path, contents: Data(cut.utf8)))

        try writer.append([letter("dl_next", bodyBytes: 10)], consumer: "orders")
        let lines = try Data(contentsOf: URL(fileURLWithPath: path)).split(separator: UInt8(ascii: "\n"))
        #expect(lines.count == 3)
        #expect(lines.map { DeadLetter.read(line: $0)?.id } == ["dl_01", nil, "dl_next"])
    }
}
