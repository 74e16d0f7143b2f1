/// Byte-level tokenizer: UTF-8 bytes are tokens 0–255, plus BOS and PAD. It needs no
/// training and never meets an unknown word, which suits short robot instructions.
public struct ByteTokenizer: Sendable {
    public static let bos: Int32 = 256
    public static let pad: Int32 = 257
    public static let vocabularySize = 258
    public let maxLength: Int

    public init(maxLength: Int) { self.maxLength = maxLength }

    /// `[BOS] + bytes`, truncated to `maxLength` and padded with PAD; the mask marks real tokens.
    public func encode(_ text: String) -> (tokens: [Int32], mask: [Bool]) {
        var tokens: [Int32] = [Self.bos] + text.utf8.map { Int32($0) }
        if tokens.count > maxLength { tokens = Array(tokens.prefix(maxLength)) }
        let real = tokens.count
        tokens += [Int32](repeating: Self.pad, count: maxLength - real)
        return (tokens, (0..<maxLength).map { $0 < real })
    }
}
