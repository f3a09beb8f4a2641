import Foundation
import FuzzDriver
import Verification

// Fuzzes the signature header parsers: `TikTok-Signature` (`t=…,s=…`), the TikTok Shop
// `Authorization` header, the Standard Webhooks headers and the element splitter they share.
//
// The first byte of an input picks the parser; the rest is split at NUL bytes into the header
// values (and a body). Besides "no crash", each run checks what the parsers promise: the check made
// before a body is read agrees with the full verification, a header the signer wrote always
// verifies, and every element the splitter yields is well formed.

/// The fixed keys: an input cannot know them (the seeds are signed with other keys), so a fuzzed
/// signature never matches, while one that the signer made always must.
let tiktokSecret = Secret("fuzz-tiktok-client-secret")
let shopAppKey = Secret("fuzz-shop-app-key")
let shopSecret = Secret("fuzz-shop-app-secret")
let standardSecret = Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")

let tiktok = WebhookVerifier.tiktok(secrets: [tiktokSecret])
let shop = WebhookVerifier.tiktokShop(appKey: shopAppKey, secrets: [shopSecret])
let standard = try! StandardWebhooksVerifier(secret: standardSecret)
let standardSigner = try! StandardWebhooksSigner(secret: standardSecret)

/// The clock of every verification: 2023-11-14T22:13:20Z.
let now = Date(timeIntervalSince1970: 1_700_000_000)

func fuzz(_ input: [UInt8]) {
    guard let selector = input.first else { return }
    let parts = input.dropFirst().split(separator: 0, omittingEmptySubsequences: false).map { Array($0) }
    switch selector % 4 {
    case 0: checkScheme(tiktok, headerName: "TikTok-Signature", parts: parts)
    case 1: checkScheme(shop, headerName: "Authorization", parts: parts)
    case 2: checkStandardWebhooks(parts: parts)
    default: checkElements(Array(input.dropFirst()))
    }
}

/// One scheme: the header check made before the body is read must refuse exactly the headers that
/// verification refuses as missing or malformed; a fuzzed header never verifies; the signer's own
/// header for the same body always does, also with spaces around its elements.
func checkScheme(_ verifier: WebhookVerifier, headerName: String, parts: [[UInt8]]) {
    let header = String(decoding: parts[0], as: UTF8.self)
    let body = parts.count > 1 ? parts[1] : []
    let headers = [(headerName, header)]

    var checkError: VerificationError?
    do { try verifier.checkHeader(headers: headers) } catch { checkError = error }
    do {
        let verified = try verifier.verify(body: Data(body), headers: headers, now: now)
        fatalError("a fuzzed header verified: \(verified)")
    } catch {
        if let checkError {
            precondition(error == checkError, "verify refused \(error), the header check \(checkError)")
        } else {
            precondition(
                error == .noMatchingSignature || error == .timestampOutsideTolerance,
                "the header check passed, verify refused it as \(error)")
        }
    }

    let signed: String
    if verifier.scheme == .tiktok {
        let timestamp = Int64(now.timeIntervalSince1970) - Int64(body.count % 300)
        signed = TikTokSigner.tiktokSignature(secret: tiktokSecret, timestamp: timestamp, body: body)
    } else {
        signed = TikTokSigner.tiktokShopAuthorization(appKey: shopAppKey, secret: shopSecret, body: body)
    }
    let spaced = " " + signed.replacingOccurrences(of: ",", with: " ,\t") + "\t"
    for value in [signed, spaced] {
        do {
            try verifier.checkHeader(headers: [(headerName, value)])
            _ = try verifier.verify(body: Data(body), headers: [(headerName, value)], now: now)
        } catch {
            fatalError("a signed header was refused: \(error)")
        }
    }
}

/// Standard Webhooks: `webhook-id`, `webhook-timestamp` and `webhook-signature` from the input
/// never verify; the signer's signature for the same id and body always does, beside the fuzzed
/// signature entries.
func checkStandardWebhooks(parts: [[UInt8]]) {
    func part(_ index: Int) -> String { index < parts.count ? String(decoding: parts[index], as: UTF8.self) : "" }
    let id = part(0)
    let body = parts.count > 3 ? parts[3] : []
    let fuzzed = [("webhook-id", id), ("Webhook-Timestamp", part(1)), ("WEBHOOK-SIGNATURE", part(2))]
    do {
        _ = try standard.verify(body: Data(body), headers: fuzzed, now: now)
        fatalError("a fuzzed webhook-signature verified")
    } catch {}

    let timestamp = Int64(now.timeIntervalSince1970)
    let signature = standardSigner.signature(id: id, timestamp: timestamp, body: Data(body))
    // Space-separated entries: the signed one may stand anywhere among the fuzzed ones, which
    // must not contain a space themselves (they would be split into other entries).
    let others = part(2).split(separator: " ").map(String.init)
    let signatures = (others + [signature]).joined(separator: " ")
    let headers = [("webhook-id", id), ("webhook-timestamp", String(timestamp)), ("webhook-signature", signatures)]
    do {
        let verifiedID = try standard.verify(body: Data(body), headers: headers, now: now)
        precondition(verifiedID == id, "verify returned another id")
    } catch {
        fatalError("a signed Standard Webhooks request was refused: \(error)")
    }
}

/// The element splitter: every element it yields has a key of lowercase letters and digits, a
/// value without a comma and not ending in a space or tab, and both are non-empty; when it
/// accepts the whole header, the elements joined again with commas read back the same.
func checkElements(_ header: [UInt8]) {
    var elements: [([UInt8], [UInt8])] = []
    let accepted = header.withUnsafeBufferPointer { bytes in
        do {
            try SignatureElements.forEach(in: bytes, headerName: "Fuzz") { key, value throws(VerificationError) in
                elements.append((Array(key), Array(value)))
            }
            return true
        } catch {
            return false
        }
    }
    for (key, value) in elements {
        precondition(!key.isEmpty && !value.isEmpty, "an empty key or value")
        precondition(key.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) }, "a key outside [a-z0-9]")
        precondition(!value.contains(UInt8(ascii: ",")), "a value with a comma")
        // Spaces around an element are trimmed; after the `=` they belong to the value (which
        // then fails the caller's own check of its digits).
        precondition(value.last != UInt8(ascii: " ") && value.last != UInt8(ascii: "\t"), "a value ending in a space")
    }
    guard accepted else { return }
    let rejoined = elements.map { $0.0 + [UInt8(ascii: "=")] + $0.1 }.joined(separator: [UInt8(ascii: ",")])
    var again: [([UInt8], [UInt8])] = []
    Array(rejoined).withUnsafeBufferPointer { bytes in
        do {
            try SignatureElements.forEach(in: bytes, headerName: "Fuzz") { key, value throws(VerificationError) in
                again.append((Array(key), Array(value)))
            }
        } catch {
            fatalError("the rejoined elements were refused: \(error)")
        }
    }
    precondition(again.elementsEqual(elements, by: { $0.0 == $1.0 && $0.1 == $1.1 }), "the rejoined elements differ")
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzz(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

@_cdecl("FuzzSignatureHeaders_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOne(data, size) }
}
