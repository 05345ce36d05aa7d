/// The pipeline file (`pipeline.json`): which Caffe nets are G, f and E, and
/// how G's output becomes f's input. Paths are relative to the file.
///
///     {
///       "generator":  {"prototxt": "generator.prototxt", "weights": "generator.caffemodel",
///                      "input": "feat", "output": "deconv0"},
///       "classifier": {"prototxt": "deploy.prototxt", "weights": "caffenet.caffemodel", "input": "data"},
///       "encoder":    {"cut": "fc6"},
///       "glue":       {"clip": {"mean_file": "mean.npy", "range": 255}, "crop": [14, 14, 227, 227]},
///       "display":    {"mean_file": "mean.npy", "channel_swap": [2, 1, 0], "scale": 255},
///       "codes":      {"low": 0, "upper_bound_file": "fc6_code_upper_bound_3x.txt",
///                      "init_low": 0, "init_high": 1}
///     }
///
/// See docs/pipelines.md for every key.
public struct PipelineSpec: Codable, Sendable {
    public struct NetSpec: Codable, Sendable {
        public var prototxt: String
        public var weights: String?
        /// Input blob (default: the net's only input).
        public var input: String?
        /// Output blob (generator: the image; encoder: the code).
        public var output: String?
        public init(prototxt: String, weights: String? = nil, input: String? = nil, output: String? = nil) {
            self.prototxt = prototxt; self.weights = weights; self.input = input; self.output = output
        }
    }
    /// E is either the classifier cut at a blob (`{"cut": "fc6"}`: one shared
    /// trunk, run once per step) or a net of its own.
    public struct EncoderSpec: Codable, Sendable {
        public var cut: String?
        public var prototxt: String?
        public var weights: String?
        public var input: String?
        public var output: String?
        public init(cut: String) { self.cut = cut }
    }
    public struct ClipSpec: Codable, Sendable {
        /// Bounds, one number or one per channel.
        public var low: [Float]?
        public var high: [Float]?
        /// Clip to [-mean, range - mean] with a mean image or per-channel mean (.npy),
        /// as PPGN does for mean-subtracted BGR images.
        public var mean_file: String?
        public var range: Float?
        public init(low: [Float]? = nil, high: [Float]? = nil) { self.low = low; self.high = high }

        enum CodingKeys: String, CodingKey { case low, high, mean_file, range }
        public init(from d: Decoder) throws {
            let c = try d.container(keyedBy: CodingKeys.self)
            low = try Self.numbers(c, .low); high = try Self.numbers(c, .high)
            mean_file = try c.decodeIfPresent(String.self, forKey: .mean_file)
            range = try c.decodeIfPresent(Float.self, forKey: .range)
        }
        static func numbers(_ c: KeyedDecodingContainer<CodingKeys>, _ k: CodingKeys) throws -> [Float]? {
            if let one = try? c.decodeIfPresent(Float.self, forKey: k) { return [one] }
            return try c.decodeIfPresent([Float].self, forKey: k)
        }
    }
    public struct GlueSpec: Codable, Sendable {
        public var clip: ClipSpec?
        /// [y, x, height, width] of the crop from G's output.
        public var crop: [Int]?
        /// Output channel i takes input channel channel_swap[i].
        public var channel_swap: [Int]?
        public var scale: Float?
        /// Added per channel after scaling.
        public var offset: [Float]?
        public init() {}
    }
    /// How G's output becomes a viewable RGB image in [0, 1]:
    /// rgb = swap((out + mean) / scale), clipped.
    public struct DisplaySpec: Codable, Sendable {
        public var mean_file: String?
        public var mean: [Float]?
        public var channel_swap: [Int]?
        /// Divide by this after adding the mean (255 for 0-255 images).
        public var scale: Float?
        /// Alternatively, map [low, high] linearly to [0, 1].
        public var low: Float?
        public var high: Float?
        public init() {}
    }
    public struct CodeSpec: Codable, Sendable {
        /// Box on the codes (e.g. fc6 codes are >= 0 after ReLU).
        public var low: Float?
        public var high: Float?
        /// Per-dimension upper bounds, one number per line or whitespace-separated.
        public var upper_bound_file: String?
        /// Initial codes are uniform in [init_low, init_high] (times the upper bound, when
        /// there is a file, as a fraction of it).
        public var init_low: Float?
        public var init_high: Float?
        public init() {}
    }

    /// How dataset images become f's input (pycaffe's Transformer, as `run`
    /// does for PNGs): pixels in [0, 1], resized to f's input (or, with
    /// center_crop, short side scaled and the centre cut), channels in
    /// channel_swap order (indices into RGB), then ((x * raw_scale) - mean) * scale.
    public struct PreprocessSpec: Codable, Sendable {
        public var raw_scale: Float?
        public var scale: Float?
        public var mean_file: String?
        public var mean_values: [Float]?
        public var channel_swap: [Int]?
        public var center_crop: Bool?
        public init() {}
    }
    /// Real images for the code prior and the evaluation.
    ///
    /// dataset: a folder of IDX files (as Debian's dataset-fashion-mnist),
    /// one IDX file, a folder of PNGs, a list file of PNG paths (with an
    /// optional label after each, Caffe's ImageData format) or an .npy of
    /// images in [0, 1] (N x H x W or N x C x H x W). Splits ("train",
    /// "test") pick the files of an IDX folder.
    public struct DataSpec: Codable, Sendable {
        public var dataset: String?
        /// The split whose codes form the sampler's prior (default "train").
        public var prior_split: String?
        /// Prior images used (default 10,000, the first ones of the split).
        public var prior_count: Int?
        /// The split the evaluation compares with (default "test"): images
        /// the sampler never saw.
        public var evaluation_split: String?
        /// The classifier blob that is G's code for an image (default: E's
        /// output when it has as many values as the code).
        public var code_blob: String?
        public var preprocess: PreprocessSpec?
        public init() {}
    }

    public var generator: NetSpec
    public var classifier: NetSpec
    public var encoder: EncoderSpec
    public var glue: GlueSpec?
    public var display: DisplaySpec?
    public var codes: CodeSpec?
    /// Human-readable class names of the classifier's output units (optional text file, one per line).
    public var labels: String?
    public var data: DataSpec?
}
