import Foundation
import GraphIR
import Runtime
import Sampler

/// SHA-256 (FIPS 180-4), for recording which weight files a run used.
public enum SHA256 {
    static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]

    /// The digest of `bytes` as 64 lowercase hex digits.
    public static func hex(_ bytes: [UInt8]) -> String {
        var h = Hasher256()
        bytes.withUnsafeBufferPointer { h.update($0) }
        return h.finish()
    }

    /// The digest of a file's contents, read 1 MiB at a time, or nil when it
    /// cannot be read.
    public static func hex(file path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        var h = Hasher256()
        while true {
            let piece: Data?
            do { piece = try handle.read(upToCount: 1 << 20) } catch { return nil }
            guard let chunk = piece, !chunk.isEmpty else { break }   // nil or empty: the end
            chunk.withUnsafeBytes { h.update($0.bindMemory(to: UInt8.self)) }
        }
        return h.finish()
    }

    /// The running state: eight words, a partial block, the byte count.
    public struct Hasher256 {
        var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
        var pending: [UInt8] = []
        var count: UInt64 = 0
        var w = [UInt32](repeating: 0, count: 64)

        public init() {}

        public mutating func update(_ p: UnsafeBufferPointer<UInt8>) {
            count &+= UInt64(p.count)
            var start = 0
            if !pending.isEmpty {
                let take = min(64 - pending.count, p.count)
                pending += p[0..<take]
                start = take
                if pending.count == 64 {
                    let block = pending
                    block.withUnsafeBufferPointer { compress($0, 0) }
                    pending = []
                }
            }
            while start + 64 <= p.count { compress(p, start); start += 64 }
            if start < p.count { pending += p[start...] }
        }

        /// Padding: 0x80, zeros to 56 mod 64, the bit length big-endian.
        public mutating func finish() -> String {
            let bits = count &* 8
            var tail = pending + [0x80]
            while tail.count % 64 != 56 { tail.append(0) }
            for i in (0..<8).reversed() { tail.append(UInt8(truncatingIfNeeded: bits >> (UInt64(i) * 8))) }
            tail.withUnsafeBufferPointer { t in for o in stride(from: 0, to: t.count, by: 64) { compress(t, o) } }
            return h.map { String(format: "%08x", $0) }.joined()
        }

        mutating func compress(_ p: UnsafeBufferPointer<UInt8>, _ offset: Int) {
            var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
            w.withUnsafeMutableBufferPointer { w in
                SHA256.k.withUnsafeBufferPointer { k in
                    for t in 0..<16 {
                        let o = offset + 4 * t
                        w[t] = UInt32(p[o]) << 24 | UInt32(p[o + 1]) << 16 | UInt32(p[o + 2]) << 8 | UInt32(p[o + 3])
                    }
                    for t in 16..<64 {
                        let s0 = w[t - 15].rotr(7) ^ w[t - 15].rotr(18) ^ (w[t - 15] >> 3)
                        let s1 = w[t - 2].rotr(17) ^ w[t - 2].rotr(19) ^ (w[t - 2] >> 10)
                        w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
                    }
                    for t in 0..<64 {
                        let t1 = hh &+ (e.rotr(6) ^ e.rotr(11) ^ e.rotr(25)) &+ ((e & f) ^ (~e & g)) &+ k[t] &+ w[t]
                        let t2 = (a.rotr(2) ^ a.rotr(13) ^ a.rotr(22)) &+ ((a & b) ^ (a & c) ^ (b & c))
                        (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
                    }
                }
            }
            h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d; h[4] &+= e; h[5] &+= f; h[6] &+= g; h[7] &+= hh
        }
    }
}

extension UInt32 {
    @inline(__always) func rotr(_ n: UInt32) -> UInt32 { self >> n | self << (32 - n) }
}

/// A weights file a run read: which net, its path, its SHA-256, and whether
/// `inverse-set init` wrote it (random weights).
public struct WeightFileRecord: Codable, Sendable, Equatable {
    public var net: String
    public var file: String
    public var sha256: String
    public var random: Bool
    public init(net: String, file: String, sha256: String, random: Bool) {
        self.net = net; self.file = file; self.sha256 = sha256; self.random = random
    }
}

extension LoadedPipeline {
    /// The weights files of G, f and E, with their digests; nets without any
    /// file are listed with file "" (their weights come from fillers).
    public func weightFiles() -> [WeightFileRecord] {
        var out: [WeightFileRecord] = []
        var nets: [(String, Net)] = [("generator", pipeline.generator), ("classifier", pipeline.classifier)]
        if let e = pipeline.encoder { nets.append(("encoder", e)) }
        for (role, net) in nets {
            if net.graph.weightSources.isEmpty {
                out.append(WeightFileRecord(net: role, file: "", sha256: "", random: true))
            }
            for s in net.graph.weightSources {
                out.append(WeightFileRecord(net: role, file: s.file, sha256: SHA256.hex(file: s.file) ?? "unreadable",
                                            random: s.isRandom || !net.filledLayers.isEmpty))
            }
        }
        return out
    }
}
