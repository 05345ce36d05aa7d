/// A layer that has something to tell the user about how it will run (shown
/// by `inspect`), e.g. a Reshape whose hard-coded batch follows the input.
public protocol DescribesBehaviour {
    var notes: [String] { get }
}
