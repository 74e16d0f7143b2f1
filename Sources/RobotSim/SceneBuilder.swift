import Foundation

/// Builds a randomized MJCF scene (robot + task objects + cameras + lights) from a seed.
public struct SceneBuilder: Sendable {
    public let embodiment: EmbodimentKind
    public let task: TaskKind
    public let seed: UInt64
    /// Caps the random distractor count (a clutter curriculum); nil keeps the task's range.
    public let maxDistractors: Int?

    /// A chain scene (`TaskChain`): a puck with its push circle, a pick_place mat and two blocks,
    /// laid out so each of those tasks stays feasible whatever the others did before it.
    public let isChain: Bool

    public init(embodiment: EmbodimentKind, task: TaskKind, seed: UInt64, maxDistractors: Int? = nil) {
        self.embodiment = embodiment
        self.task = task
        self.seed = seed
        self.maxDistractors = maxDistractors
        isChain = false
    }

    /// The builder of seed `seed`'s chain scene (`task` is then unused).
    public init(chainSceneFor embodiment: EmbodimentKind, seed: UInt64) {
        self.embodiment = embodiment
        task = .pickPlace
        self.seed = seed
        maxDistractors = nil
        isChain = true
    }

    /// The seeded layout (objects, zones, instruction, lighting, camera jitter).
    public func layout() -> SceneLayout {
        let sceneIndex = isChain ? UInt64(TaskKind.allCases.count) : UInt64(TaskKind.allCases.firstIndex(of: task)!)
        var rng = SeededGenerator(seed: seed &* 0x2545_F491_4F6C_DD1D &+ sceneIndex &* 7919
                                  &+ UInt64(EmbodimentKind.allCases.firstIndex(of: embodiment)!) &* 104_729)
        var s = SceneLayout()
        var colors = NamedColor.palette
        colors.shuffle(using: &rng)
        var nextColor = 0
        func takeColor() -> NamedColor { defer { nextColor += 1 }; return colors[nextColor % colors.count] }
        func jitter(_ c: NamedColor) -> SIMD3<Double> {
            let j = SIMD3(rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05))
            return simd_clamp(c.rgb + j, 0, 1)
        }
        let yRange = embodiment == .bimanual ? 0.28 : 0.2
        var occupied: [(SIMD3<Double>, Double)] = []
        func free(_ p: SIMD3<Double>, _ r: Double) -> Bool {
            occupied.allSatisfy { norm(SIMD3($0.0.x - p.x, $0.0.y - p.y, 0)) > $0.1 + r }
        }
        func place(x: ClosedRange<Double>, y: ClosedRange<Double>, r: Double, z: Double) -> SIMD3<Double> {
            for _ in 0..<200 {
                let p = SIMD3(rng.uniform(x.lowerBound, x.upperBound), rng.uniform(y.lowerBound, y.upperBound), z)
                if free(p, r) { occupied.append((p, r)); return p }
            }
            let p = SIMD3(x.lowerBound, y.lowerBound, z)
            occupied.append((p, r))
            return p
        }
        func addObject(_ shape: ObjectShape, color: NamedColor, x: ClosedRange<Double> = 0.36...0.62,
                       y: ClosedRange<Double>? = nil, yaw: Bool = true) {
            let h = shape == .box ? 0.02 : 0.028
            let height = shape == .box ? 0.02 : 0.015
            let p = place(x: x, y: y ?? -yRange...yRange, r: h + 0.04, z: height)
            s.objects.append(SceneObject(name: "obj\(s.objects.count)", color: color, rgb: jitter(color),
                                         shape: shape, halfSize: h, position: p,
                                         yaw: yaw && shape == .box ? rng.uniform(-0.7, 0.7) : 0))
        }
        func distractors(_ range: ClosedRange<Int>, x: ClosedRange<Double> = 0.36...0.62) {
            let n = min(rng.int(range.lowerBound..<range.upperBound + 1), maxDistractors ?? .max)
            for _ in 0..<n { addObject(rng.chance(0.5) ? .box : .cylinder, color: takeColor(), x: x) }
        }
        // Puck in the middle band, zone 0.12–0.2 m away in a random direction that stays reachable,
        // with the approach point 9 cm behind the puck; both claim their space. nil after 100 tries.
        func pushLayout() -> (puck: SIMD3<Double>, zone: SIMD3<Double>, behind: SIMD3<Double>)? {
            for _ in 0..<100 {
                occupied.removeAll()
                let p = place(x: 0.42...0.56, y: -yRange * 0.6...yRange * 0.6, r: 0.06, z: 0)
                let angle = rng.uniform(0, 2 * .pi), d = rng.uniform(0.12, 0.2)
                let z = SIMD3(p.x + d * cos(angle), p.y + d * sin(angle), 0.0005)
                if (0.36...0.64).contains(z.x) && abs(z.y) <= yRange && (0.33...0.66).contains(p.x - 0.09 * cos(angle)) {
                    occupied = [(p, 0.06), (z, 0.06)]
                    return (p, z, SIMD3(p.x - 0.09 * cos(angle), p.y - 0.09 * sin(angle), 0))
                }
            }
            return nil
        }

        var fill: [String: String] = [:]
        if isChain {
            chainObjects: for _ in 0..<50 {
                occupied.removeAll(); s.objects.removeAll(); nextColor = 0
                // The push lane (from behind the puck, where the hand starts, to the circle's
                // centre) stays clear of the mat and the blocks, so a placed block never blocks a push.
                guard let layout = pushLayout() else { continue }
                s.zone = SceneZone(color: takeColor(), center: layout.zone, radius: 0.06)
                let lane = (start: layout.behind, end: layout.zone), puck = layout.puck
                let puckColor = takeColor()
                s.objects.append(SceneObject(name: "obj0", color: puckColor, rgb: jitter(puckColor), shape: .cylinder,
                                             halfSize: 0.028, position: SIMD3(puck.x, puck.y, 0.015), yaw: 0))
                func clearOfLane(x: ClosedRange<Double>, r: Double, clearance: Double, z: Double) -> SIMD3<Double>? {
                    for _ in 0..<200 {
                        let p = SIMD3(rng.uniform(x.lowerBound, x.upperBound), rng.uniform(-yRange, yRange), z)
                        if free(p, r) && distanceToSegment(p, lane.start, lane.end) > clearance { occupied.append((p, r)); return p }
                    }
                    return nil
                }
                guard let mat = clearOfLane(x: 0.4...0.6, r: 0.08, clearance: 0.1, z: 0.0005) else { continue }
                s.mat = SceneZone(color: takeColor(), center: mat, radius: 0.06)
                for _ in 0..<2 {
                    guard let p = clearOfLane(x: 0.36...0.62, r: 0.06, clearance: 0.09, z: 0.02) else { continue chainObjects }
                    let c = takeColor()
                    s.objects.append(SceneObject(name: "obj\(s.objects.count)", color: c, rgb: jitter(c), shape: .box,
                                                 halfSize: 0.02, position: p, yaw: rng.uniform(-0.7, 0.7)))
                }
                break
            }
        } else {
        switch task {
        case .reach:
            addObject(rng.chance(0.5) ? .box : .cylinder, color: takeColor())
            distractors(1...3)
        case .push:
            let zoneColor = takeColor()
            if let layout = pushLayout() {
                s.zone = SceneZone(color: zoneColor, center: layout.zone, radius: 0.06)
                s.objects.append(SceneObject(name: "obj0", color: takeColor(), rgb: SIMD3(0, 0, 0), shape: .cylinder,
                                             halfSize: 0.028, position: SIMD3(layout.puck.x, layout.puck.y, 0.015), yaw: 0))
            }
            let o = s.objects[0]
            s.objects[0] = SceneObject(name: o.name, color: o.color, rgb: jitter(o.color), shape: .cylinder,
                                       halfSize: o.halfSize, position: o.position, yaw: 0)
            // A distractor well away from the push segment.
            if rng.chance(0.6) {
                let a = o.position, b = s.zone!.center
                for _ in 0..<50 {
                    let p = SIMD3(rng.uniform(0.36, 0.62), rng.uniform(-yRange, yRange), 0.02)
                    if distanceToSegment(p, a, b) > 0.13 && free(p, 0.05) {
                        occupied.append((p, 0.05))
                        s.objects.append(SceneObject(name: "obj1", color: takeColor(), rgb: SIMD3(0.5, 0.5, 0.5), shape: .box,
                                                     halfSize: 0.02, position: p, yaw: rng.uniform(-0.7, 0.7)))
                        let d = s.objects[1]
                        s.objects[1] = SceneObject(name: d.name, color: d.color, rgb: jitter(d.color), shape: .box,
                                                   halfSize: 0.02, position: p, yaw: d.yaw)
                        break
                    }
                }
            }
        case .pickPlace:
            let zoneColor = takeColor()
            let z = place(x: 0.4...0.6, y: -yRange...yRange, r: 0.08, z: 0.0005)
            s.zone = SceneZone(color: zoneColor, center: z, radius: 0.06)
            addObject(.box, color: takeColor())
            distractors(0...2)
        case .sort:
            let c1 = takeColor(), c2 = takeColor()
            let flip = rng.chance(0.5)
            let by = embodiment == .bimanual ? 0.2 : 0.17
            let binX = rng.uniform(0.56, 0.6)
            for (i, c) in [c1, c2].enumerated() {
                let y = ((i == 0) != flip) ? by : -by
                let center = SIMD3(binX + rng.uniform(-0.01, 0.01), y + rng.uniform(-0.01, 0.01), 0)
                s.bins.append(SceneBin(color: c, center: center, innerHalf: 0.065))
                occupied.append((center, 0.1))
            }
            addObject(.box, color: c1, x: 0.34...0.45, y: -0.15...0.15)
            addObject(.box, color: c2, x: 0.34...0.45, y: -0.15...0.15)
        case .stack:
            addObject(.box, color: takeColor())
            addObject(.box, color: takeColor())
            s.second = 1
            distractors(0...1)
        case .drawer:
            let c = takeColor()
            let front = SIMD3(rng.uniform(0.56, 0.62), rng.uniform(-0.12, 0.12) * (embodiment == .bimanual ? 1.5 : 1), 0.0)
            s.drawer = SceneDrawer(color: c, front: front)
            fill["cabinet"] = c.name
            occupied.append((SIMD3(front.x + 0.12, front.y, 0), 0.2))
            if rng.chance(0.5) { addObject(.box, color: takeColor(), x: 0.34...0.42) }
        }
        }
        s.target = 0
        if !s.objects.isEmpty { fill["obj"] = s.objects[0].phrase }
        if let second = s.second { fill["obj2"] = s.objects[second].phrase }
        if let zone = s.zone { fill["zone"] = zone.color.name }
        let family = task.instructionFamily
        var text = family[rng.int(0..<family.count)]
        for (k, v) in fill { text = text.replacingOccurrences(of: "{\(k)}", with: v) }
        // A chain's instructions come from its goals (`TaskChain`).
        s.instruction = isChain ? "" : text

        s.tableRGB = SIMD3(rng.uniform(0.45, 0.65), rng.uniform(0.4, 0.55), rng.uniform(0.3, 0.45))
        s.lightDirection = normalized(SIMD3(rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4), -1))
        s.lightDiffuse = rng.uniform(0.5, 0.85)
        // Front camera facing the robot; for the drawer a side camera (the cabinet would hide
        // its own front). Position jitter ±3 cm, aim jitter ±2 cm.
        let jitter = SIMD3(rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03))
        let aim = SIMD3(rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02), 0)
        if task == .drawer {
            s.sceneCameraPosition = SIMD3(0.42, -0.85, 0.55) + jitter
            s.sceneCameraTarget = SIMD3(0.5, 0, 0.04) + aim
        } else {
            s.sceneCameraPosition = SIMD3(1.02, 0, 0.55) + jitter
            s.sceneCameraTarget = SIMD3(0.48, 0, 0.03) + aim
        }
        return s
    }

    /// MJCF text for `layout`. `imageSize` sizes MuJoCo's off-screen framebuffer (renders
    /// can be at most that big); `samples` is its multisampling (0 = none: fastest on llvmpipe).
    public func xml(for s: SceneLayout, imageSize: (width: Int, height: Int) = (96, 96), samples: Int = 0) -> String {
        var body = ""
        var actuators = ""
        var contacts = ""
        let arms = embodiment.arms
        var armParents = ""
        if embodiment == .bimanual {
            armParents = """
                <body name="torso" pos="0 0 0">
                  <joint name="torso_yaw" axis="0 0 1" range="-0.6 0.6" armature="0.5" damping="5"/>
                  <geom class="robot" type="box" size="0.08 0.13 0.2" pos="-0.06 0 0.22" rgba="0.35 0.35 0.4 1"/>
                  <geom class="robot" type="sphere" size="0.07" pos="-0.04 0 0.5" rgba="0.8 0.8 0.82 1"/>
            """
            actuators += "    <position name=\"torso_yaw\" joint=\"torso_yaw\" kp=\"2000\" kv=\"200\" ctrlrange=\"-0.6 0.6\"/>\n"
        }
        for arm in arms {
            let (b, a) = armXML(arm)
            armParents += b
            actuators += a
        }
        if embodiment == .bimanual { armParents += "    </body>\n" }
        body += armParents

        for o in s.objects {
            // Pucks are low and slippery so a push never tips them over.
            let size = o.shape == .box ? "\(f(o.halfSize)) \(f(o.halfSize)) \(f(o.halfSize))" : "\(f(o.halfSize)) \(f(o.halfHeight))"
            let friction = o.shape == .box ? "" : " friction=\"0.5 0.005 0.0001\""
            body += """
                <body name="\(o.name)" pos="\(v(o.position))" euler="0 0 \(f(o.yaw))">
                  <freejoint name="\(o.name)_free"/>
                  <geom name="\(o.name)_geom" class="object" type="\(o.shape.rawValue)" size="\(size)" rgba="\(v(o.rgb)) 1" mass="0.05"\(friction)/>
                </body>

            """
        }
        if let z = s.zone {
            let shape = task == .push || isChain ? "type=\"cylinder\" size=\"\(f(z.radius)) 0.0005\"" : "type=\"box\" size=\"\(f(z.radius)) \(f(z.radius)) 0.0005\""
            body += "    <geom name=\"zone\" \(shape) pos=\"\(v(z.center))\" rgba=\"\(v(z.color.rgb)) 1\" contype=\"0\" conaffinity=\"0\"/>\n"
        }
        if let m = s.mat {
            body += "    <geom name=\"mat\" type=\"box\" size=\"\(f(m.radius)) \(f(m.radius)) 0.0005\" pos=\"\(v(m.center))\" rgba=\"\(v(m.color.rgb)) 1\" contype=\"0\" conaffinity=\"0\"/>\n"
        }
        for (i, bin) in s.bins.enumerated() {
            let h = bin.innerHalf, t = 0.006, wall = 0.025
            let c = bin.center
            body += """
                <body name="bin\(i)" pos="\(v(c))">
                  <geom class="fixture" type="box" size="\(f(h + t)) \(f(h + t)) 0.002" pos="0 0 0.002" rgba="\(v(bin.color.rgb)) 1"/>
                  <geom class="fixture" type="box" size="\(f(t)) \(f(h + t)) \(f(wall))" pos="\(f(h + t)) 0 \(f(wall))" rgba="\(v(bin.color.rgb * 0.8)) 1"/>
                  <geom class="fixture" type="box" size="\(f(t)) \(f(h + t)) \(f(wall))" pos="\(f(-h - t)) 0 \(f(wall))" rgba="\(v(bin.color.rgb * 0.8)) 1"/>
                  <geom class="fixture" type="box" size="\(f(h + t)) \(f(t)) \(f(wall))" pos="0 \(f(h + t)) \(f(wall))" rgba="\(v(bin.color.rgb * 0.8)) 1"/>
                  <geom class="fixture" type="box" size="\(f(h + t)) \(f(t)) \(f(wall))" pos="0 \(f(-h - t)) \(f(wall))" rgba="\(v(bin.color.rgb * 0.8)) 1"/>
                </body>

            """
        }
        if let d = s.drawer {
            // Cabinet: open front at x = front.x, depth 0.24, width 0.24, height 0.13.
            let x0 = d.front.x, y0 = d.front.y, rgb = v(d.color.rgb)
            let hz = SceneDrawer.handleHeight
            body += """
                <body name="cabinet" pos="\(f(x0)) \(f(y0)) 0">
                  <geom class="fixture" type="box" size="0.12 0.125 0.006" pos="0.12 0 0.134" rgba="\(rgb) 1"/>
                  <geom class="fixture" type="box" size="0.12 0.006 0.07" pos="0.12 0.119 0.07" rgba="\(rgb) 1"/>
                  <geom class="fixture" type="box" size="0.12 0.006 0.07" pos="0.12 -0.119 0.07" rgba="\(rgb) 1"/>
                  <geom class="fixture" type="box" size="0.006 0.125 0.07" pos="0.246 0 0.07" rgba="\(rgb) 1"/>
                  <body name="drawer" pos="0 0 0">
                    <joint name="drawer_slide" type="slide" axis="-1 0 0" range="0 \(f(SceneDrawer.travel))" damping="3" armature="0.05"/>
                    <geom class="fixture" type="box" size="0.006 0.11 0.052" pos="0.006 0 0.064" rgba="\(v(d.color.rgb * 0.7)) 1"/>
                    <geom class="fixture" type="box" size="0.11 0.105 0.004" pos="0.115 0 0.016" rgba="0.5 0.5 0.5 1"/>
                    <geom class="fixture" type="box" size="0.11 0.004 0.03" pos="0.115 0.1 0.045" rgba="0.5 0.5 0.5 1"/>
                    <geom class="fixture" type="box" size="0.11 0.004 0.03" pos="0.115 -0.1 0.045" rgba="0.5 0.5 0.5 1"/>
                    <geom class="fixture" type="box" size="0.004 0.105 0.03" pos="0.222 0 0.045" rgba="0.5 0.5 0.5 1"/>
                    <geom name="handle" class="fixture" type="capsule" fromto="\(f(-SceneDrawer.handleOffset)) -0.07 \(f(hz)) \(f(-SceneDrawer.handleOffset)) 0.07 \(f(hz))" size="0.008" rgba="0.2 0.2 0.2 1"/>
                    <geom class="fixture" type="capsule" fromto="\(f(-SceneDrawer.handleOffset)) -0.07 \(f(hz)) 0 -0.07 \(f(hz))" size="0.007" rgba="0.2 0.2 0.2 1"/>
                    <geom class="fixture" type="capsule" fromto="\(f(-SceneDrawer.handleOffset)) 0.07 \(f(hz)) 0 0.07 \(f(hz))" size="0.007" rgba="0.2 0.2 0.2 1"/>
                    <site name="hook" pos="\(f(-SceneDrawer.handleOffset / 2)) 0 \(f(hz))" size="0.005"/>
                  </body>
                </body>

            """
            contacts += ""
        }

        let camX = lookAtXYAxes(from: s.sceneCameraPosition, to: s.sceneCameraTarget, up: SIMD3(0, 0, 1))
        return """
        <mujoco model="robotsim_\(embodiment.rawValue)_\(isChain ? "chain" : task.rawValue)">
          <compiler angle="radian" autolimits="true"/>
          <option timestep="0.002" integrator="implicitfast" cone="elliptic" impratio="10"/>
          <visual>
            <global offwidth="\(imageSize.width)" offheight="\(imageSize.height)"/>
            <headlight ambient="0.35 0.35 0.35" diffuse="0.35 0.35 0.35" specular="0.1 0.1 0.1"/>
            <quality shadowsize="2048" offsamples="\(samples)" numslices="16" numstacks="8"/>
          </visual>
          <default>
            <joint damping="1" armature="0.1"/>
            <geom solref="0.005 1" friction="1 0.005 0.0001"/>
            <default class="robot">
              <geom contype="2" conaffinity="1" rgba="0.85 0.85 0.88 1"/>
            </default>
            <default class="finger">
              <geom contype="2" conaffinity="1" condim="4" friction="1.5 0.01 0.001" rgba="0.25 0.25 0.28 1"/>
            </default>
            <default class="object">
              <geom contype="1" conaffinity="3" condim="4" friction="1.2 0.01 0.001"/>
            </default>
            <default class="fixture">
              <geom contype="1" conaffinity="3"/>
            </default>
          </default>
          <worldbody>
            <light name="sun" directional="true" pos="0 0 2" dir="\(v(s.lightDirection))" diffuse="\(f(s.lightDiffuse)) \(f(s.lightDiffuse)) \(f(s.lightDiffuse))" specular="0.2 0.2 0.2" castshadow="true"/>
            <geom name="table" type="plane" size="1.5 1.5 0.05" rgba="\(v(s.tableRGB)) 1" contype="1" conaffinity="3"/>
            <camera name="scene" pos="\(v(s.sceneCameraPosition))" xyaxes="\(camX)" fovy="45"/>
        \(body)
          </worldbody>
          <actuator>
        \(actuators)
          </actuator>
        </mujoco>
        """
    }

    func armXML(_ arm: ArmLayout) -> (body: String, actuators: String) {
        let p = arm.prefix
        let link = arm.dof == 7
            ? [(0.30, 0.05), (0.21, 0.045), (0.21, 0.045), (0.20, 0.04), (0.20, 0.035), (0.0, 0.035), (0.06, 0.03)]
            : [(0.30, 0.05), (0.42, 0.045), (0.20, 0.04), (0.20, 0.035), (0.0, 0.035), (0.06, 0.03)]
        let axes = arm.dof == 7 ? ["0 0 1", "0 1 0", "0 0 1", "0 1 0", "0 0 1", "0 1 0", "0 0 1"]
                                : ["0 0 1", "0 1 0", "0 1 0", "0 0 1", "0 1 0", "0 0 1"]
        let ranges = arm.dof == 7 ? [2.9, 2.0, 2.9, 2.6, 2.9, 2.6, 2.9] : [2.9, 2.0, 2.6, 2.9, 2.6, 2.9]
        let names = arm.jointNames
        var s = """
                <body name="\(p)base" pos="\(v(arm.base))">
                  <geom class="robot" type="cylinder" size="0.07 0.03" pos="0 0 0.03" rgba="0.3 0.3 0.32 1"/>

        """
        var close = ""
        var offset = 0.06
        var actuators = ""
        for i in 0..<arm.dof {
            let (len, r) = link[i]
            let geom = len > 0
                ? "<geom class=\"robot\" type=\"capsule\" fromto=\"0 0 0 0 0 \(f(len))\" size=\"\(f(r))\"/>"
                : "<geom class=\"robot\" type=\"sphere\" size=\"\(f(r))\"/>"
            s += "      <body name=\"\(p)link\(i + 1)\" pos=\"0 0 \(f(offset))\" gravcomp=\"1\">\n"
            s += "        <joint name=\"\(names[i])\" axis=\"\(axes[i])\" range=\"\(f(-ranges[i])) \(f(ranges[i]))\"/>\n"
            s += "        \(geom)\n"
            close += "      </body>\n"
            offset = len
            let big = i < 4
            actuators += "    <position name=\"\(names[i])\" joint=\"\(names[i])\" kp=\"\(big ? 1500 : 400)\" kv=\"\(big ? 120 : 25)\" ctrlrange=\"\(f(-ranges[i])) \(f(ranges[i]))\"/>\n"
        }
        let camAxes = lookAtXYAxes(from: SIMD3(0.075, 0, -0.01), to: SIMD3(-0.01, 0, 0.16), up: SIMD3(-1, 0, 0))
        s += """
                <body name="\(p)hand" pos="0 0 \(f(offset))" gravcomp="1">
                  <geom class="robot" type="box" size="0.02 0.06 0.015" pos="0 0 0.015" rgba="0.3 0.3 0.32 1"/>
                  <site name="\(p)tcp" pos="0 0 0.08" size="0.006" rgba="1 0 0 0"/>
                  <camera name="\(p)wrist" pos="0.075 0 -0.01" xyaxes="\(camAxes)" fovy="75"/>
                  <body name="\(p)finger_l" pos="0 0 0.03" gravcomp="1">
                    <joint name="\(p)finger_l" type="slide" axis="0 1 0" range="0 \(f(ArmLayout.fingerTravel))" damping="4" armature="0.01"/>
                    <geom class="finger" type="box" size="0.012 0.006 0.03" pos="0 0.006 0.03"/>
                  </body>
                  <body name="\(p)finger_r" pos="0 0 0.03" gravcomp="1">
                    <joint name="\(p)finger_r" type="slide" axis="0 -1 0" range="0 \(f(ArmLayout.fingerTravel))" damping="4" armature="0.01"/>
                    <geom class="finger" type="box" size="0.012 0.006 0.03" pos="0 -0.006 0.03"/>
                  </body>
                </body>

        """
        s += close
        s += "    </body>\n"
        for fj in arm.fingerJoints {
            actuators += "    <position name=\"\(fj)\" joint=\"\(fj)\" kp=\"300\" kv=\"10\" ctrlrange=\"0 \(f(ArmLayout.fingerTravel))\" forcerange=\"-12 12\"/>\n"
        }
        return (s, actuators)
    }
}

func f(_ x: Double) -> String { String(format: "%.5g", x) }
func v(_ x: SIMD3<Double>) -> String { "\(f(x.x)) \(f(x.y)) \(f(x.z))" }

func simd_clamp(_ x: SIMD3<Double>, _ lo: Double, _ hi: Double) -> SIMD3<Double> {
    SIMD3(min(max(x.x, lo), hi), min(max(x.y, lo), hi), min(max(x.z, lo), hi))
}

/// MuJoCo camera `xyaxes` for a camera at `from` looking at `to` (camera looks along −z,
/// y is image-up).
func lookAtXYAxes(from: SIMD3<Double>, to: SIMD3<Double>, up: SIMD3<Double>) -> String {
    let fwd = normalized(to - from)
    let x = normalized(cross(fwd, up))
    let y = cross(-fwd, x)
    return "\(v(x)) \(v(y))"
}

func distanceToSegment(_ p: SIMD3<Double>, _ a: SIMD3<Double>, _ b: SIMD3<Double>) -> Double {
    let ab = SIMD3(b.x - a.x, b.y - a.y, 0), ap = SIMD3(p.x - a.x, p.y - a.y, 0)
    let t = max(0, min(1, dot(ap, ab) / max(dot(ab, ab), 1e-12)))
    return norm(ap - ab * t)
}
