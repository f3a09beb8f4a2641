import Delivery
import Foundation

/// Where a dead-letter listing stopped, as the opaque `nextCursor` of `GET /admin/dead-letters`.
///
/// For each consumer listed it holds the file that was read and the byte offset of the oldest line
/// already returned: the next page lists lines before that offset, newest first. Files are
/// append-only, so lines written between two pages come after every offset a cursor holds and
/// neither shift nor repeat what the next page lists; they show on a new listing. A consumer that
/// returned no line yet holds the end of its file as it was on the first page, for the same
/// reason. When a file was rotated between two pages (another device or inode), the rest of that
/// consumer's old lines are in the rotated file, which the API does not read: the consumer adds
/// nothing more to the listing.
///
/// The text is base64url of a small JSON object; clients must pass it back unchanged.
struct DeadLetterCursor: Sendable, Equatable {
    struct Position: Sendable, Equatable, Codable {
        /// The file's device and inode, or `nil` when there was no file.
        var file: [UInt64]?
        /// Lines that start at or after this offset were listed already (or came later).
        var before: Int

        var identity: DeadLetterIndex.FileIdentity? {
            guard let file, file.count == 2 else { return nil }
            return DeadLetterIndex.FileIdentity(device: file[0], inode: file[1])
        }

        init(file: DeadLetterIndex.FileIdentity?, before: Int) {
            self.file = file.map { [$0.device, $0.inode] }
            self.before = before
        }
    }

    private struct Encoded: Codable {
        var v: Int
        var p: [String: Position]
    }

    var positions: [String: Position]

    init(positions: [String: Position]) {
        self.positions = positions
    }

    /// The cursor an earlier page answered; a cursor that was not made here is a bad request.
    init(text: String) throws(AdminRequestError) {
        let invalid = AdminRequestError("cursor is not a nextCursor this API answered")
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard text.count <= 65_536, let data = Data(base64Encoded: base64),
            let encoded = try? JSONDecoder().decode(Encoded.self, from: data),
            encoded.v == 1,
            encoded.p.values.allSatisfy({ $0.before >= 0 && ($0.file == nil || $0.file?.count == 2) })
        else { throw invalid }
        positions = encoded.p
    }

    var text: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = (try? encoder.encode(Encoded(v: 1, p: positions))) ?? Data()
        return data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
