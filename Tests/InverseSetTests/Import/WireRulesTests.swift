import Foundation
import Testing
import CaffeImport
import GraphIR
import Layers
import Runtime
import TestSupport

/// The binary reader follows protobuf's rules for what a reader must accept,
/// each checked on a file written byte by byte (`WireBytes`): unknown fields,
/// known fields with another wire type, packed and unpacked repeated fields,
/// repeated occurrences of singular fields (last one wins; messages merge),
/// and what stays an error (with its byte offset).
///
/// Field numbers (our caffe.proto): NetParameter name 1, layer 100;
/// LayerParameter name 1, type 2, bottom 3, top 4, blobs 7, convolution_param
/// 106, data_param 107, inner_product_param 117, pooling_param 121;
/// BlobProto data 5 (packed), shape 7, num 1; BlobShape dim 1 (packed);
/// DataParameter source 1, scale 2, batch_size 4; InnerProductParameter
/// num_output 1, bias_term 2, axis 5; ConvolutionParameter pad 3 (not packed);
/// PoolingParameter pool 1.
struct WireRulesTests {
    func decode(_ w: WireBytes) throws -> ParamMessage {
        try CaffeModel.decodeBinary(w.bytes, type: "caffe.NetParameter", file: "hand.caffemodel")
    }
    func error(_ w: WireBytes) -> String {
        do { _ = try decode(w); return "" } catch { return "\(error)" }
    }
    func net(layer: WireBytes) -> WireBytes {
        var n = WireBytes()
        n.string(1, "hand")
        n.message(100, layer)
        return n
    }
    /// A layer with name and type, and whatever `body` adds.
    func layer(_ name: String = "ip", type: String = "InnerProduct", _ body: (inout WireBytes) -> Void = { _ in }) -> WireBytes {
        var l = WireBytes()
        l.string(1, name)
        l.string(2, type)
        body(&l)
        return l
    }

    @Test func unknownFieldsAreSkipped() throws {
        let l = layer { l in
            l.int(9_999, 42)                       // unknown varint
            l.lengthDelimited(9_998, [1, 2, 3])    // unknown bytes
            l.fixed32(9_997, 7)                    // unknown 32-bit
            l.fixed64(9_996, 7)                    // unknown 64-bit
            l.tag(9_995, 3)                        // unknown group, with a nested group inside
            l.int(1, 5); l.tag(2, 3); l.fixed32(3, 1); l.tag(2, 4)
            l.tag(9_995, 4)
            l.string(3, "x")                       // bottom, after the unknowns
        }
        var n = net(layer: l)
        n.int(12_345, 1)                           // unknown at the top level too
        let m = try decode(n)
        let got = try #require(m.messages("layer").first)
        #expect(try got.string("name") == "ip")
        #expect(try got.strings("bottom") == ["x"])
        #expect(try m.string("name") == "hand")
    }

    /// A fork stores a field of a data-layer parameter with another type:
    /// protobuf (and real Caffe) treats the mismatched field as unknown.
    @Test func mismatchedWireTypesAreSkippedAsUnknown() throws {
        var data = WireBytes()
        data.int(2, 3)            // scale is a float (wire 5): a varint does not fit
        data.int(1, 17)           // source is a string: a varint does not fit
        data.fixed32(4, 9)        // batch_size is uint32 (varint): fixed32 does not fit
        data.int(7, 3)            // rand_skip: fits
        let l = layer("data", type: "Data") { l in
            l.message(107, data)
            l.int(106, 5)         // convolution_param is a message: a varint does not fit
            l.float(3, 1)         // bottom (string) as a float
        }
        let got = try #require(try decode(net(layer: l)).messages("layer").first)
        let p = got.message("data_param")
        #expect(try p.float("scale") == 1, "default kept")
        #expect(!p.has("source") && !p.has("batch_size"))
        #expect(try p.int("rand_skip") == 3)
        #expect(!got.has("convolution_param"))
        #expect(try got.strings("bottom").isEmpty)
    }

    /// A real caffemodel with a mismatched NetParameter.name, an unknown
    /// field and a layer whose data_param.scale is a varint appended: real
    /// Caffe (the oracle's pycaffe) loads it, and so do we, with the same weights.
    @Test func aFileRealCaffeLoadsLoads() throws {
        let dir = Paths.fixture("conv_basic")
        var odd = WireBytes()
        odd.int(1, 5)                     // name (string) as a varint
        odd.int(999_999, 7)               // unknown
        var data = WireBytes(); data.int(2, 3)
        let ghost = layer("ghost", type: "Data") { $0.message(107, data) }
        odd.message(100, ghost)
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/weights.caffemodel")))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("odd-\(UUID().uuidString).caffemodel").path
        FileManager.default.createFile(atPath: path, contents: Data(good + odd.bytes))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let a = try CaffeModel.load(prototxt: dir + "/net.prototxt", weights: path)
        let b = try CaffeModel.load(prototxt: dir + "/net.prototxt", weights: dir + "/weights.caffemodel")
        #expect(a.nodes.map { $0.weights.map(\.data) } == b.nodes.map { $0.weights.map(\.data) })
    }

    @Test func packedAndUnpackedRepeatedFieldsBothRead() throws {
        func blob(_ body: (inout WireBytes) -> Void) throws -> [Float] {
            var b = WireBytes()
            body(&b)
            let l = layer { $0.message(7, b) }
            let got = try #require(try decode(net(layer: l)).messages("layer").first)
            return try got.messages("blobs")[0].floats("data")
        }
        #expect(try blob { $0.packedFloats(5, [1, 2, 3]) } == [1, 2, 3])
        #expect(try blob { for x: Float in [1, 2, 3] { $0.float(5, x) } } == [1, 2, 3], "unpacked")
        #expect(try blob { $0.float(5, 1); $0.packedFloats(5, [2, 3]); $0.float(5, 4) } == [1, 2, 3, 4], "mixed, in order")

        // BlobShape.dim is declared packed; unpacked varints are read too.
        var shape = WireBytes()
        shape.int(1, 2); shape.int(1, 3)
        var b = WireBytes()
        b.message(7, shape)
        // ConvolutionParameter.pad is not declared packed; a packed record is read too.
        var conv = WireBytes()
        conv.packedVarints(3, [1, 2])
        let l = layer("c", type: "Convolution") { $0.message(7, b); $0.message(106, conv) }
        let got = try #require(try decode(net(layer: l)).messages("layer").first)
        #expect(try got.messages("blobs")[0].message("shape").ints("dim") == [2, 3])
        #expect(try got.message("convolution_param").ints("pad") == [1, 2])
    }

    @Test func lastOneWinsAndMessagesMerge() throws {
        var first = WireBytes()
        first.int(1, 5)           // num_output 5
        first.int(2, 0)           // bias_term false
        var second = WireBytes()
        second.int(1, 7)          // num_output 7; bias_term not given
        var shapeA = WireBytes(); shapeA.int(1, 2)
        var shapeB = WireBytes(); shapeB.int(1, 3)
        var blob = WireBytes()
        blob.message(7, shapeA)
        blob.message(7, shapeB)   // singular message twice: merged, so dim (repeated) appends
        blob.int(1, 4); blob.int(1, 9)   // num twice: 9
        let l = layer("first") { l in
            l.message(117, first)
            l.string(1, "second")  // name twice: the last wins
            l.message(117, second)
            l.message(7, blob)
        }
        let got = try #require(try decode(net(layer: l)).messages("layer").first)
        #expect(try got.string("name") == "second")
        #expect(got.values("name").count == 1)
        let ip = got.message("inner_product_param")
        #expect(try ip.int("num_output") == 7)
        #expect(try ip.bool("bias_term") == false, "kept from the first occurrence")
        let b = got.messages("blobs")[0]
        #expect(try b.message("shape").ints("dim") == [2, 3])
        #expect(try b.int("num") == 9)
    }

    @Test func integerEncodingsAndUnknownEnumValues() throws {
        var ip = WireBytes()
        ip.int(5, -1)             // int32 -1 as a ten-byte varint
        var pool = WireBytes()
        pool.int(1, 7)            // PoolMethod 7 does not exist: the field stays unset
        let l = layer { $0.message(117, ip); $0.message(121, pool) }
        let got = try #require(try decode(net(layer: l)).messages("layer").first)
        #expect(try got.message("inner_product_param").int("axis") == -1)
        #expect(!got.message("pooling_param").has("pool"))
        #expect(try got.message("pooling_param").enumName("pool") == "MAX")
    }

    @Test func malformedInputIsAnErrorWithItsOffset() {
        // Length past the end: a layer record claiming 1000 bytes at byte 2.
        var liar = WireBytes()
        liar.tag(100, 2); liar.varint(1000); liar.append([0x0A, 0x01, 0x61])
        #expect(error(liar).contains("hand.caffemodel: byte 2 (in layer[0]): the length prefix claims 1000 bytes but only 3 remain"), "\(error(liar))")

        var longVarint = WireBytes()
        longVarint.string(1, "n")
        longVarint.tag(3, 0); longVarint.append([UInt8](repeating: 0xFF, count: 11))
        #expect(error(longVarint).contains("byte 4"), "\(error(longVarint))")
        #expect(error(longVarint).contains("more than 10 bytes"), "\(error(longVarint))")

        var cut = WireBytes()
        cut.tag(3, 0); cut.append([0x80, 0x80])
        #expect(error(cut).contains("byte 1") && error(cut).contains("ends inside a variable-length number"), "\(error(cut))")

        var oddRun = WireBytes()
        var blob = WireBytes(); blob.lengthDelimited(5, [0, 0, 0, 0, 0, 0])   // 6 bytes of floats
        oddRun.message(100, layer { $0.message(7, blob) })
        #expect(error(oddRun).contains("not a multiple of 4"), "\(error(oddRun))")
        #expect(error(oddRun).contains("layer[0].blobs[0].data[0]"), "\(error(oddRun))")

        var wire7 = WireBytes(); wire7.tag(1, 7)
        #expect(error(wire7).contains("byte 0") && error(wire7).contains("invalid wire type 7"), "\(error(wire7))")
        var endGroup = WireBytes(); endGroup.tag(9, 4)
        #expect(error(endGroup).contains("end-of-group tag without its start"), "\(error(endGroup))")
        var openGroup = WireBytes(); openGroup.tag(9, 3); openGroup.int(1, 1)
        #expect(error(openGroup).contains("no end tag"), "\(error(openGroup))")
        var zero = WireBytes(); zero.tag(0, 0); zero.varint(1)
        #expect(error(zero).contains("field number 0 is invalid"), "\(error(zero))")
    }

    /// Messages nested past protobuf's limit of 100 are refused (not a stack
    /// overflow), in binary and in text.
    @Test func deepNestingIsRefused() throws {
        // 5,000 levels of layer { layer { ... } } in text (inside a layer, unknown
        // fields are kept for plugins, so the schema does not stop the recursion).
        let deep = String(repeating: "layer { ", count: 5_000) + String(repeating: "} ", count: 5_000)
        do {
            _ = try CaffeModel.parseText(deep, file: "deep.prototxt")
            Issue.record("5,000 levels must not parse")
        } catch {
            #expect("\(error)".contains("nested more than 100 deep"), "\(error)")
        }
        // 99 levels are fine (a message of a message of ...): untyped fields in a layer.
        let ok = "layer { name: \"a\" " + String(repeating: "p { ", count: 98) + String(repeating: "} ", count: 98) + "}"
        _ = try CaffeModel.parseText(ok, file: "ok.prototxt")

        // Binary: Caffe's schema has no recursive message, so deep nesting can
        // only come as (skipped) groups of an unknown field.
        var groups = WireBytes()
        for _ in 0..<150 { groups.tag(9_000, 3) }
        for _ in 0..<150 { groups.tag(9_000, 4) }
        let message = "\(error(groups))"
        #expect(message.contains("nested more than 100 deep"), "\(message)")
    }
}
