import GraphIR
import Runtime

/// IDXData (our own type): batches from IDX files such as MNIST and
/// Fashion-MNIST, plain or gzip-compressed.
///
///     layer { name: "data" type: "IDXData" top: "data" top: "label"
///             idx_data_param { source: "train-images-idx3-ubyte.gz"
///                              label_source: "train-labels-idx1-ubyte.gz"
///                              batch_size: 64 shuffle: true scale: 0.00390625 seed: 1 } }
///
/// Tops: data (N, C, H, W) — an idx3 file of H x W images gives C = 1, an
/// idx4 file of C x H x W items keeps C; 1-d items give (N, D) — and, with
/// label_source, label (N). Values are (raw - mean) * transform scale *
/// `scale`; transform_param (mean_value, mean_file, crop_size, mirror)
/// works as for other data layers. Batches walk the items in order and wrap
/// around; with `shuffle` the order is a fresh permutation every epoch,
/// drawn from `seed`, or from the net's seed (the solver's random_seed)
/// when `seed` is not given.
final class IDXDataLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["IDXData"]

    let images: IDXArray
    let labels: IDXArray?
    let batchSize: Int
    let shuffle: Bool
    let seed: UInt64?
    let transformer: DataTransformer
    /// Source item as C x H x W, and the output shapes.
    let channels: Int, height: Int, width: Int
    let outputShapes: [Shape]

    fileprivate var order: DataOrder?

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(0)
        try ctx.expectOutputs(1...2)
        let p = ctx.param("idx_data_param")
        let (source, labelSource, batch, shuffle, scale, seed) = try ctx.reading {
            (try p.string("source", default: ""), try p.string("label_source", default: ""),
             try p.int("batch_size", default: 1), try p.bool("shuffle", default: false),
             try p.float("scale", default: 1), p.has("seed") ? try p.int("seed") : nil)
        }
        guard !source.isEmpty else {
            throw ctx.error("idx_data_param needs source: \"PATH\" (an IDX image file, e.g. train-images-idx3-ubyte.gz)")
        }
        guard batch > 0 else { throw ctx.error("idx_data_param batch_size must be > 0, got \(batch)") }
        if ctx.outputCount == 2 && labelSource.isEmpty {
            throw ctx.error("has a label top but idx_data_param has no label_source: \"PATH\" (an IDX label file)")
        }
        do {
            images = try IDXFile.read(source)
            labels = labelSource.isEmpty ? nil : try IDXFile.read(labelSource)
        } catch let e as IDXFile.Error {
            throw ctx.error(e.description)
        }
        guard images.count > 0 else { throw ctx.error("\(source): holds no items") }
        let item = Array(images.dims.dropFirst())
        switch item.count {
        case 0: (channels, height, width) = (1, 1, 1)
        case 1: (channels, height, width) = (item[0], 1, 1)
        case 2: (channels, height, width) = (1, item[0], item[1])
        case 3: (channels, height, width) = (item[0], item[1], item[2])
        default:
            throw ctx.error("\(source): items of rank \(item.count) (\(images.dims)); IDXData reads vectors, H x W or C x H x W items")
        }
        if let labels {
            guard labels.count == images.count else {
                throw ctx.error("\(labelSource): holds \(labels.count) labels but \(source) holds \(images.count) items; the files do not belong together")
            }
            guard labels.itemSize == 1 else {
                throw ctx.error("\(labelSource): has items of shape \(Array(labels.dims.dropFirst())); a label file holds one number per item (idx1)")
            }
        }
        transformer = try DataTransformer(ctx, extraScale: scale)
        if item.count < 2 && transformer.cropSize > 0 {
            throw ctx.error("crop_size needs image items, but \(source) holds vectors")
        }
        if let problem = try transformer.check(channels: channels, height: height, width: width, what: "each item of \(source)") {
            throw ctx.error(problem)
        }
        let (oh, ow) = transformer.outputSize(height: height, width: width)
        let dataShape = item.count < 2 ? Shape([batch, channels]) : Shape([batch, channels, oh, ow])
        outputShapes = ctx.outputCount == 2 ? [dataShape, Shape([batch])] : [dataShape]
        batchSize = batch
        self.shuffle = shuffle
        self.seed = seed.map { UInt64(bitPattern: Int64($0)) }
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] { outputShapes }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        var o = order ?? DataOrder(count: images.count, shuffle: shuffle, seed: seed ?? ctx.rng.next())
        defer { order = o }
        let itemIn = channels * height * width
        let itemOut = outputs[0].count / batchSize
        let raw = ctx.scratch(itemIn)
        for b in 0..<batchSize {
            let idx = o.current
            images.item(idx, into: raw)
            transformer.apply(raw, channels: channels, height: height, width: width,
                              into: outputs[0].data + b * itemOut, rng: &o.rng)
            if outputs.count > 1, let labels { outputs[1][b] = labels.scalar(idx) }
            o.advance()
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {}
    var hasBackward: Bool { false }
}

/// The item order of a data layer and its random stream (shuffling and the
/// transformer's crops and mirrors draw from it): 0..<count, a full pass,
/// then a new permutation when `shuffle`, as Caffe's data layers do. Made on
/// the first batch, seeded by the layer's seed or the net's stream.
struct DataOrder {
    private var order: [Int]
    private var cursor: Int
    private let shuffle: Bool
    var rng: SplitMix64

    /// `skip`: start at a random item below it (ImageData's rand_skip).
    init(count: Int, shuffle: Bool, seed: UInt64, skip: Int = 0) {
        var r = SplitMix64(seed: seed)
        order = Array(0..<count)
        if shuffle { fisherYates(&order, &r) }
        cursor = skip > 0 ? Int(r.next() % UInt64(skip)) : 0
        self.shuffle = shuffle
        rng = r
    }

    /// The item to read now.
    var current: Int { order[cursor] }

    /// The order as numbers, for a snapshot: cursor, random state, order.
    var saved: [UInt64] { [UInt64(cursor), rng.currentState] + order.map { UInt64($0) } }

    /// Continues from `saved` of an order over `count` items.
    init(saved: [UInt64], count: Int, shuffle: Bool) throws {
        let items = saved.dropFirst(2).map { Int(truncatingIfNeeded: $0) }
        guard saved.count == count + 2, Int(saved[0]) < count,
              Set(items).count == count, items.allSatisfy({ (0..<count).contains($0) }) else {
            throw RuntimeError.input("the saved item order does not fit a data source of \(count) items (\(max(0, saved.count - 2)) saved); was it saved from another dataset?")
        }
        cursor = Int(saved[0])
        rng = SplitMix64(seed: saved[1])
        order = items
        self.shuffle = shuffle
    }

    /// Moves past the current item (after it was read and transformed),
    /// reshuffling at the end of a pass.
    mutating func advance() {
        cursor += 1
        if cursor == order.count {
            cursor = 0
            if shuffle { fisherYates(&order, &rng) }
        }
    }
}

/// Shuffles in place with our own Fisher-Yates (not the standard library's,
/// whose algorithm may change between toolchains), so an order depends on
/// the seed alone: for i from the end, swap a[i] with a[j], j uniform in 0...i.
func fisherYates(_ a: inout [Int], _ rng: inout SplitMix64) {
    guard a.count > 1 else { return }
    for i in stride(from: a.count - 1, to: 0, by: -1) {
        let j = Int(rng.next() % UInt64(i + 1))
        a.swapAt(i, j)
    }
}

extension IDXDataLayer: StatefulLayer {
    var runState: [UInt64] { order?.saved ?? [] }
    func restoreRunState(_ state: [UInt64]) throws {
        order = state.isEmpty ? nil : try DataOrder(saved: state, count: images.count, shuffle: shuffle)
    }
}
