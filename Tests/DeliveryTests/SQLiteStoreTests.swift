import Delivery
import Foundation
import Logging
import Testing
import Verification

struct SQLiteStoreTests {
    let logger = Logger(label: "test")

    @Test func passesTheStoreConformanceSuite() async throws {
        let directory = try TemporaryDirectory()
        var count = 0
        let conformance = StoreConformance<SQLiteStore> { now, retention in
            count += 1
            return try SQLiteStore(
                configuration: .init(path: directory.path("store-\(count).sqlite"), dedupRetention: retention),
                logger: logger,
                now: now
            )
        }
        try await conformance.runAll()
        try await conformance.runConsumerControlSuite()
        try await conformance.runEventLogSuite()
    }

    /// An operator's pause is in the file: a restarted gateway finds it.
    @Test func anOperatorsPauseSurvivesReopening() async throws {
        let directory = try TemporaryDirectory()
        let at = Date(timeIntervalSince1970: 1_764_000_000)
        do {
            let store = try SQLiteStore(configuration: .init(path: directory.path("s.sqlite")), logger: logger)
            try await store.setConsumerHold(consumer: "orders", held: true, at: at)
        }
        let reopened = try SQLiteStore(configuration: .init(path: directory.path("s.sqlite")), logger: logger)
        #expect(try await reopened.consumerHolds() == ["orders": at])
    }

    /// A value SQLite refuses to bind (here: longer than a lowered length limit) fails the
    /// event's batch and writes nothing. Unchecked, a refused value is left unbound: a column
    /// that allows NULL (the order id) would silently be stored as NULL.
    @Test func aValueThatCannotBeBoundFailsTheEvent() async throws {
        let directory = try TemporaryDirectory()
        let clock = ManualClock()
        let store = try SQLiteStore(
            configuration: .init(path: directory.path("store.sqlite")), logger: logger, now: { clock.now })
        try await store.limitValueLength(to: 400)
        let small = StoreConformance<SQLiteStore>.event(key: "small", at: clock.now)
        #expect(try await store.accept(small) == .accepted(eventID: small.id))
        var longOrder = StoreConformance<SQLiteStore>.event(key: "long-order", at: clock.now)
        longOrder.orderID = String(repeating: "7", count: 1_000)
        let largeBody = StoreConformance<SQLiteStore>.event(
            key: "large-body", body: #"{"event":"b","pad":""# + String(repeating: "x", count: 1_000) + #""}"#, at: clock.now)
        for refused in [longOrder, largeBody] {
            await #expect(throws: StoreError.self) { try await store.accept(refused) }
            #expect(try await store.event(id: refused.id) == nil)
            #expect(try await store.dedupEntry(for: refused.dedupKey) == nil)
        }
        #expect(try await store.depth(consumer: "orders") == 1)
        // The next event binds its own values.
        let next = StoreConformance<SQLiteStore>.event(key: "next", body: #"{"event":"c"}"#, at: clock.now)
        #expect(try await store.accept(next) == .accepted(eventID: next.id))
        #expect(try await store.event(id: next.id)?.body == Data(#"{"event":"c"}"#.utf8))
    }
    @Test func usesWALWithFullSync() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteStore(configuration: .init(path: directory.path("s.sqlite")), logger: logger)
        let settings = try await store.durabilitySettings()
        #expect(settings.journalMode == "wal")
        #expect(settings.synchronous == 2)  // FULL
    }

    @Test func dedupSurvivesAReopen() async throws {
        let directory = try TemporaryDirectory()
        let clock = ManualClock()
        let path = directory.path("s.sqlite")
        let first = StoreConformance<SQLiteStore>.event(key: "k", at: clock.now)
        do {
            let store = try SQLiteStore(configuration: .init(path: path), logger: logger, now: { clock.now })
            #expect(try await store.accept(first) == .accepted(eventID: first.id))
        }
        let reopened = try SQLiteStore(configuration: .init(path: path), logger: logger, now: { clock.now })
        #expect(
            try await reopened.accept(StoreConformance<SQLiteStore>.event(key: "k", at: clock.now)) == .duplicate(firstEventID: first.id))
        #expect(try await reopened.event(id: first.id)?.body == first.body)
    }

    @Test func deletedFileFailsTheBatchThenRecovers() async throws {
        let directory = try TemporaryDirectory()
        let clock = ManualClock()
        let path = directory.path("s.sqlite")
        let store = try SQLiteStore(configuration: .init(path: path), logger: logger, now: { clock.now })
        _ = try await store.accept(StoreConformance<SQLiteStore>.event(key: "a", at: clock.now))
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }

        await #expect(throws: StoreError.unavailable) {
            try await store.accept(StoreConformance<SQLiteStore>.event(key: "b", at: clock.now))
        }
        // The next batch opens a new file at the path and writes durably again.
        let event = StoreConformance<SQLiteStore>.event(key: "c", at: clock.now)
        #expect(try await store.accept(event) == .accepted(eventID: event.id))
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(await store.checkWritable())
    }

    @Test func unwritablePathAnswersUnavailableUntilFixed() async throws {
        let directory = try TemporaryDirectory()
        let clock = ManualClock()
        let path = directory.path("s.sqlite")
        let store = try SQLiteStore(configuration: .init(path: path), logger: logger, now: { clock.now })
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        // A directory where the database file should be: SQLite cannot open or write it (even as root).
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)

        for key in ["a", "b", "c"] {
            await #expect(throws: StoreError.unavailable) {
                try await store.accept(StoreConformance<SQLiteStore>.event(key: key, at: clock.now))
            }
        }
        #expect(await store.checkWritable() == false)

        try FileManager.default.removeItem(atPath: path)
        let event = StoreConformance<SQLiteStore>.event(key: "d", at: clock.now)
        #expect(try await store.accept(event) == .accepted(eventID: event.id))
        #expect(await store.checkWritable())
    }

    @Test(.enabled(if: TmpfsMount.isPossible, "needs root and tmpfs to make a real full disk"))
    func fullDiskAnswersUnavailableAndRecovers() async throws {
        let directory = try TemporaryDirectory()
        let mount = try TmpfsMount(at: directory.path("disk"), sizeKiB: 2_048)
        defer { mount.unmount() }
        let clock = ManualClock()
        let store = try SQLiteStore(configuration: .init(path: mount.path + "/s.sqlite"), logger: logger, now: { clock.now })

        // Fill the disk with a ballast file, leaving almost nothing.
        let ballast = mount.path + "/ballast"
        _ = FileManager.default.createFile(atPath: ballast, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: ballast))
        let chunk = Data(repeating: 0x61, count: 4_096)
        while (try? handle.write(contentsOf: chunk)) != nil {}
        try? handle.close()

        let big = String(repeating: "x", count: 64 * 1_024)
        var failures = 0
        for index in 0..<40 {
            do {
                _ = try await store.accept(StoreConformance<SQLiteStore>.event(key: "k\(index)", body: big, at: clock.now))
            } catch {
                #expect(error == .unavailable)
                failures += 1
            }
        }
        #expect(failures > 0)

        try FileManager.default.removeItem(atPath: ballast)
        let event = StoreConformance<SQLiteStore>.event(key: "after", body: big, at: clock.now)
        #expect(try await store.accept(event) == .accepted(eventID: event.id))
        #expect(await store.checkWritable())
    }

    @Test func pruneServiceRemovesEveryExpiredKeyInChunks() async throws {
        let directory = try TemporaryDirectory()
        let clock = ManualClock()
        let store = try SQLiteStore(configuration: .init(path: directory.path("s.sqlite")), logger: logger, now: { clock.now })
        for index in 0..<25 {
            _ = try await store.accept(StoreConformance<SQLiteStore>.event(key: "k\(index)", at: clock.now))
        }
        let service = PruneService(dedup: store, chunkSize: 10, logger: logger, now: { clock.now })
        #expect(await service.pruneOnce().dedupKeys == 0)
        clock.advance(by: 7 * 86_400)
        #expect(await service.pruneOnce().dedupKeys == 25)
        #expect(try await store.dedupEntry(for: DedupKey(rawValue: "k3")) == nil)
    }

    @Test func groupCommitBatchesConcurrentRequests() async throws {
        let directory = try TemporaryDirectory()
        let clock = ManualClock()
        let store = try SQLiteStore(configuration: .init(path: directory.path("s.sqlite")), logger: logger, now: { clock.now })
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<400 {
                group.addTask {
                    let event = StoreConformance<SQLiteStore>.event(key: "k\(index)", at: clock.now)
                    let outcome = try await store.accept(event)
                    #expect(outcome == .accepted(eventID: event.id))
                }
            }
            try await group.waitForAll()
        }
        #expect(try await store.depth(consumer: "orders") == 400)
        // 400 durable events in fewer transactions than events: the commits were grouped.
        #expect(store.commitCount < 400)
    }
}

/// A small tmpfs, to fill up for real.
struct TmpfsMount {
    let path: String

    static let isPossible: Bool = {
        guard getuid() == 0 else { return false }
        let probe = FileManager.default.temporaryDirectory.appendingPathComponent("wg-mount-probe-\(getpid())").path
        guard let mount = try? TmpfsMount(at: probe, sizeKiB: 64) else { return false }
        mount.unmount()
        return true
    }()

    init(at path: String, sizeKiB: Int) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/mount")
        process.arguments = ["-t", "tmpfs", "-o", "size=\(sizeKiB)k", "tmpfs", path]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.fileWriteNoPermission) }
        self.path = path
    }

    func unmount() {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/umount")
        process.arguments = [path]
        try? process.run()
        process.waitUntilExit()
    }
}
