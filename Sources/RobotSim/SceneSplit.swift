import Foundation

/// Splits the scene distribution for generalization tests: a scene is *seen* unless its named
/// target has a held-out colour or lies in a held-out table region. Training on `.seen` scenes
/// only and evaluating on the other parts measures how a policy does on target colours and
/// positions it never saw a demonstration (or a pointing label) for.
///
/// The split classifies seeds after the fact (`SceneBuilder.layout()` is unchanged), so every
/// seed keeps the scene it always had and earlier results stay comparable.
public struct SceneSplit: Sendable, Equatable {
    /// Colour names the target never has in seen scenes (it may still appear as a distractor).
    public var heldOutColors: Set<String>
    /// Table region (metres, world x forward from the robot, y to its left) where the target
    /// never lies in seen scenes.
    public var heldOutX: ClosedRange<Double>
    public var heldOutY: ClosedRange<Double>

    /// Purple targets, and targets in the far-left corner of the reach/pick area
    /// (x ≥ 0.52 m, y ≥ 0.08 m: about 12% of the area where the first object is placed).
    public static let standard = SceneSplit(heldOutColors: ["purple"], heldOutX: 0.52...1.0, heldOutY: 0.08...1.0)

    public init(heldOutColors: Set<String>, heldOutX: ClosedRange<Double>, heldOutY: ClosedRange<Double>) {
        self.heldOutColors = heldOutColors
        self.heldOutX = heldOutX
        self.heldOutY = heldOutY
    }

    /// Where a scene falls. `novelBoth` is neither of the single-novelty parts, so each of
    /// those changes exactly one thing against `seen`.
    public enum Part: String, CaseIterable, Sendable, Codable {
        case seen
        case novelColor = "novel-color"
        case novelPosition = "novel-position"
        case novelBoth = "novel-both"
    }

    /// The part of a layout, judged by its named target object (`layout.target`: the reached,
    /// pushed or picked object). A scene without objects (a drawer without a block) is seen.
    public func part(of layout: SceneLayout) -> Part {
        guard layout.objects.indices.contains(layout.target) else { return .seen }
        let target = layout.objects[layout.target]
        switch (holdsOut(colorName: target.color.name), holdsOut(position: target.position)) {
        case (false, false): return .seen
        case (true, false): return .novelColor
        case (false, true): return .novelPosition
        case (true, true): return .novelBoth
        }
    }

    /// Whether the split keeps this colour name out of seen targets.
    public func holdsOut(colorName: String) -> Bool { heldOutColors.contains(colorName) }

    /// Whether a table position (world metres) lies in the held-out region.
    public func holdsOut(position: SIMD3<Double>) -> Bool {
        heldOutX.contains(position.x) && heldOutY.contains(position.y)
    }

    /// The part of seed `seed`'s scene for this body and task (no MuJoCo: only the layout).
    public func part(embodiment: EmbodimentKind, task: TaskKind, seed: UInt64) -> Part {
        part(of: SceneBuilder(embodiment: embodiment, task: task, seed: seed).layout())
    }

    /// Seeds scanned at most by `seeds`: a part a task cannot produce (a novel colour in a
    /// drawer scene without objects) ends the search instead of running forever.
    public static let searchLimit: UInt64 = 1_000_000

    /// The first `count` seeds from `start` on (ascending) whose scenes fall in `part`; fewer
    /// when the `limit` seeds from `start` hold fewer.
    public func seeds(_ part: Part, embodiment: EmbodimentKind, task: TaskKind, from start: UInt64, count: Int,
                      limit: UInt64 = SceneSplit.searchLimit) -> [UInt64] {
        var seeds: [UInt64] = []
        var seed = start
        while seeds.count < count && seed - start < limit {
            if self.part(embodiment: embodiment, task: task, seed: seed) == part { seeds.append(seed) }
            seed += 1
        }
        return seeds
    }
}
