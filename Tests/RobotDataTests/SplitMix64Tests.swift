import Testing
import RobotData

@Suite("SplitMix64")
struct SplitMix64Tests {
    @Test func matchesTheReferenceSequenceAndResumesFromItsState() {
        // Reference outputs of Vigna's splitmix64.c from x = 0.
        var g = SplitMix64(seed: 0)
        #expect(g.next() == 0xE220_A839_7B1D_CDAF)
        #expect(g.next() == 0x6E78_9E6A_A1B9_65F4)
        var resumed = SplitMix64(seed: g.state)
        #expect((0..<5).map { _ in g.next() } == (0..<5).map { _ in resumed.next() })
        let u = g.nextDouble()
        #expect(u >= 0 && u < 1)
    }
}
