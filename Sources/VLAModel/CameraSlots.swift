/// Fixed camera slots shared by all embodiments, so one model reads any robot's cameras:
/// 0 = scene, 1 = left or only wrist, 2 = right wrist.
public enum CameraSlots {
    /// RobotSim names the wrist cameras after their arm's joint prefix: "a_wrist" (single
    /// arm), "l_wrist" and "r_wrist" (bimanual).
    public static func slot(for camera: String) -> Int {
        if camera == "scene" { return 0 }
        if camera.hasPrefix("r_") || camera.hasPrefix("right") { return 2 }
        return 1
    }

    /// Whether `camera` is a name the slots know (the scene camera or a wrist camera).
    public static func isKnown(_ camera: String) -> Bool { camera == "scene" || camera.hasSuffix("wrist") }
}
