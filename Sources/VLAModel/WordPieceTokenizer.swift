import Foundation

/// Errors from reading a pretrained text encoder's files.
public enum TextEncoderError: Error, CustomStringConvertible, Equatable {
    case missingFile(String)
    case damagedFile(String)
    public var description: String {
        switch self {
        case .missingFile(let m): return "TextEncoderError.missingFile: \(m)"
        case .damagedFile(let m): return "TextEncoderError.damagedFile: \(m)"
        }
    }
}

/// BERT's uncased WordPiece tokenizer, read from a HuggingFace `tokenizer.json`:
/// clean the text, space out CJK ideographs, strip accents (NFD minus nonspacing marks),
/// lowercase, split on whitespace and punctuation, then greedy longest-match WordPiece
/// with the `##` continuation prefix; `[CLS] … [SEP]`, truncated and padded with `[PAD]`.
public struct WordPieceTokenizer: Sendable {
    /// Token → id. Keys are compared by their UTF-8 bytes, never by Swift's canonical
    /// equivalence, so two vocabulary entries can never merge.
    let vocabulary: [[UInt8]: Int32]
    public let unknownID: Int32, clsID: Int32, sepID: Int32, padID: Int32
    public let continuationPrefix: String
    public let maxCharactersPerWord: Int
    /// Ids per sequence including `[CLS]` and `[SEP]`.
    public let maxLength: Int

    public var vocabularySize: Int { vocabulary.count }

    public init(tokenizerFile url: URL, maxLength: Int) throws {
        guard maxLength >= 2 else { throw TextEncoderError.damagedFile("maxLength \(maxLength) leaves no room for [CLS] and [SEP]") }
        guard FileManager.default.fileExists(atPath: url.path) else { throw TextEncoderError.missingFile(url.path) }
        let data = try Data(contentsOf: url)
        let file: TokenizerFile
        do { file = try JSONDecoder().decode(TokenizerFile.self, from: data) } catch {
            throw TextEncoderError.damagedFile("\(url.path): \(error)")
        }
        guard file.model.type == "WordPiece" else {
            throw TextEncoderError.damagedFile("\(url.path): model type \(file.model.type), expected WordPiece")
        }
        var vocabulary: [[UInt8]: Int32] = [:]
        for (token, id) in file.model.vocab { vocabulary[Array(token.utf8)] = Int32(id) }
        func id(_ token: String) throws -> Int32 {
            guard let id = vocabulary[Array(token.utf8)] else { throw TextEncoderError.damagedFile("\(url.path): no \(token) in the vocabulary") }
            return id
        }
        self.vocabulary = vocabulary
        unknownID = try id(file.model.unk_token)
        clsID = try id("[CLS]")
        sepID = try id("[SEP]")
        padID = try id("[PAD]")
        continuationPrefix = file.model.continuing_subword_prefix ?? "##"
        maxCharactersPerWord = file.model.max_input_chars_per_word ?? 100
        self.maxLength = maxLength
    }

    /// `[CLS] + word pieces + [SEP]`, the pieces truncated so the whole fits `maxLength`,
    /// then padded with `[PAD]`; the mask marks real tokens.
    public func encode(_ text: String) -> (ids: [Int32], mask: [Bool]) {
        var ids = [clsID] + Array(pieces(text).prefix(maxLength - 2)) + [sepID]
        let real = ids.count
        ids += [Int32](repeating: padID, count: maxLength - real)
        return (ids, (0..<maxLength).map { $0 < real })
    }

    /// WordPiece ids of `text` without special tokens, padding or truncation.
    public func pieces(_ text: String) -> [Int32] {
        Self.words(Self.normalized(text)).flatMap(wordPieces)
    }

    /// Greedy longest match from the left; a word with any unmatched rest is `[UNK]` whole.
    func wordPieces(_ word: [Unicode.Scalar]) -> [Int32] {
        guard word.count <= maxCharactersPerWord else { return [unknownID] }
        var ids: [Int32] = [], start = 0
        while start < word.count {
            var end = word.count, found: Int32?
            while end > start {
                var key = start > 0 ? Array(continuationPrefix.utf8) : []
                for scalar in word[start..<end] { key += Array(String(scalar).utf8) }
                if let id = vocabulary[key] { found = id; break }
                end -= 1
            }
            guard let found else { return [unknownID] }
            ids.append(found)
            start = end
        }
        return ids
    }

    /// BERT's normalizer: drop NUL, U+FFFD and control characters, whitespace → space, CJK
    /// ideographs spaced out, accents stripped, lowercased (per character, no context).
    static func normalized(_ text: String) -> [Unicode.Scalar] {
        var cleaned = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar.value == 0 || scalar.value == 0xFFFD || isControl(scalar) { continue }
            if isWhitespace(scalar) { cleaned.append(" "); continue }
            if isCJK(scalar) { cleaned.append(" "); cleaned.append(scalar); cleaned.append(" "); continue }
            cleaned.append(scalar)
        }
        var out: [Unicode.Scalar] = []
        for scalar in String(cleaned).decomposedStringWithCanonicalMapping.unicodeScalars
        where scalar.properties.generalCategory != .nonspacingMark {
            out += scalar.properties.lowercaseMapping.unicodeScalars
        }
        return out
    }

    /// Split on whitespace (dropped) and punctuation (kept as one-character words).
    static func words(_ scalars: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = [], current: [Unicode.Scalar] = []
        for scalar in scalars {
            if isWhitespace(scalar) {
                if !current.isEmpty { words.append(current); current = [] }
            } else if isPunctuation(scalar) {
                if !current.isEmpty { words.append(current); current = [] }
                words.append([scalar])
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    static func isWhitespace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }

    /// Unicode's "other" categories, except tab, newline and carriage return (whitespace here).
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    /// ASCII punctuation (incl. symbols such as $ + < = > ^ ` | ~) or any Unicode P* category.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// The CJK Unified Ideograph blocks BERT spaces out (not kana or hangul).
    static func isCJK(_ s: Unicode.Scalar) -> Bool {
        let ranges: [ClosedRange<UInt32>] = [0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
                                             0x2B740...0x2B81F, 0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F]
        return ranges.contains { $0.contains(s.value) }
    }

    /// The parts of `tokenizer.json` this tokenizer reads.
    struct TokenizerFile: Decodable {
        struct Model: Decodable {
            var type: String
            var vocab: [String: Int]
            var unk_token: String
            var continuing_subword_prefix: String?
            var max_input_chars_per_word: Int?
        }
        var model: Model
    }
}
