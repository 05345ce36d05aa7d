#if canImport(Glibc)
import Glibc
#endif
import GraphIR

/// Owned, 64-byte aligned float storage. Several tensors may view one storage
/// when the executor's memory plan lets values with disjoint lifetimes share it.
public final class Storage: @unchecked Sendable {
    public private(set) var pointer: UnsafeMutablePointer<Float>
    public private(set) var capacity: Int

    public init(capacity: Int) {
        self.capacity = max(capacity, 1)
        self.pointer = Storage.allocate(self.capacity)
    }
    deinit { free(pointer) }

    /// Storages of 16 MB and more are aligned to, and sized in,
    /// 2 MB huge pages, and the kernel is asked to back them with such pages
    /// (Linux transparent huge pages in "madvise" mode): the FC kernels read
    /// eight weight rows side by side, tens of KB apart, and with 4 KB pages
    /// each row costs its own TLB misses. Smaller storages keep 64-byte
    /// alignment (rounding them up would add to the peak memory).
    static let hugePageBytes = 2 << 20

    private static func allocate(_ n: Int) -> UnsafeMutablePointer<Float> {
        var raw: UnsafeMutableRawPointer?
        var bytes = n * MemoryLayout<Float>.stride
        let huge = bytes >= 8 * hugePageBytes
        if huge { bytes = (bytes + hugePageBytes - 1) / hugePageBytes * hugePageBytes }
        guard posix_memalign(&raw, huge ? hugePageBytes : 64, bytes) == 0, let raw else {
            fatalError("out of memory allocating \(n) floats")   // not user data: the machine is out of memory
        }
        #if os(Linux)
        if huge { _ = madvise(raw, bytes, MADV_HUGEPAGE) }   // advice only: ignored where unsupported
        #endif
        let p = raw.bindMemory(to: Float.self, capacity: n)
        p.initialize(repeating: 0, count: n)
        return p
    }

    /// Grows (never shrinks) to hold `n` floats; old contents are not kept.
    public func reserve(_ n: Int) {
        guard n > capacity else { return }
        free(pointer)
        capacity = n
        pointer = Storage.allocate(n)
    }
}

/// A dense float32 array in C (row-major) order with Caffe's N-d shape.
///
/// Layers read and write tensors through `data` (a raw pointer) so inner loops
/// compile to plain vectorisable code.
public final class Tensor: @unchecked Sendable, CustomStringConvertible {
    public private(set) var shape: Shape
    public private(set) var storage: Storage

    public init(shape: Shape) {
        self.shape = shape
        self.storage = Storage(capacity: shape.count)
    }
    public init(shape: Shape, storage: Storage) {
        precondition(storage.capacity >= shape.count)
        self.shape = shape; self.storage = storage
    }
    public convenience init(shape: Shape, values: [Float]) {
        precondition(values.count == shape.count, "\(values.count) values for shape \(shape)")
        self.init(shape: shape)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: values.count) }
    }
    public convenience init(shape: Shape, repeating v: Float) {
        self.init(shape: shape)
        fill(v)
    }

    @inline(__always) public var data: UnsafeMutablePointer<Float> { storage.pointer }
    @inline(__always) public var count: Int { shape.count }
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }
    public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// Changes the shape, growing the storage when needed (contents undefined then).
    public func reshape(_ s: Shape) {
        if s.count > storage.capacity { storage.reserve(s.count) }
        shape = s
    }
    /// Points this tensor at another storage (used by the memory planner).
    public func rebind(_ s: Storage, shape: Shape) {
        precondition(s.capacity >= shape.count)
        storage = s; self.shape = shape
    }

    public func fill(_ v: Float) { data.update(repeating: v, count: count) }
    public func zero() { fill(0) }
    public func copy(from other: Tensor) {
        precondition(other.count == count, "copy of \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }
    public func copy() -> Tensor {
        let t = Tensor(shape: shape)
        t.copy(from: self)
        return t
    }
    /// self += other (same count).
    public func add(_ other: Tensor) {
        precondition(other.count == count)
        let a = data, b = other.data
        for i in 0..<count { a[i] += b[i] }
    }

    public subscript(i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }

    public var description: String { "Tensor(\(shape))" }
}
