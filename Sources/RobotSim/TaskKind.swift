/// Language-conditioned tasks.
public enum TaskKind: String, CaseIterable, Sendable, Codable {
    case reach
    case push
    case pickPlace = "pick_place"
    case sort
    case stack
    case drawer = "open_drawer"

    public var summary: String {
        switch self {
        case .reach: "move the gripper to a named object among distractors"
        case .push: "push a puck into a coloured zone (gripper closed)"
        case .pickPlace: "pick a named block and place it on a coloured mat"
        case .sort: "put two blocks into the bins of their own colour"
        case .stack: "stack one named block on another"
        case .drawer: "open a drawer by hooking its handle"
        }
    }

    /// Control steps before the episode is truncated.
    public var stepLimit: Int {
        switch self {
        case .reach: 100
        case .push: 220
        case .pickPlace: 220
        case .sort: 420
        case .stack: 240
        case .drawer: 200
        }
    }

    /// Instruction templates; {obj}, {obj2}, {zone}, {cabinet} are filled from the scene.
    var instructionFamily: [String] {
        switch self {
        case .reach: ["reach the {obj}", "move your gripper to the {obj}", "touch the {obj}",
                      "go to the {obj}", "put your hand next to the {obj}"]
        case .push: ["push the {obj} into the {zone} circle", "slide the {obj} onto the {zone} target",
                     "shove the {obj} to the {zone} zone", "move the {obj} into the {zone} area without lifting it"]
        case .pickPlace: ["put the {obj} on the {zone} mat", "pick up the {obj} and place it on the {zone} mat",
                          "move the {obj} onto the {zone} mat", "place the {obj} on the {zone} square"]
        case .sort: ["sort the blocks by color into the matching bins", "put each block into the bin of the same color",
                     "place every block in the bin that matches its color", "tidy the blocks into bins by color"]
        case .stack: ["stack the {obj} on the {obj2}", "put the {obj} on top of the {obj2}",
                      "place the {obj} onto the {obj2}", "build a tower: {obj} on the {obj2}"]
        case .drawer: ["open the drawer", "pull the {cabinet} drawer open", "open the {cabinet} cabinet's drawer",
                       "slide the drawer out"]
        }
    }

    /// Which embodiments this task runs on (the expert reaches ≥ 95% on every listed pair).
    public var embodiments: [EmbodimentKind] {
        switch self {
        case .reach, .pickPlace, .push, .stack, .drawer: [.arm7, .arm6, .bimanual]
        case .sort: [.arm7, .arm6, .bimanual]
        }
    }
}
