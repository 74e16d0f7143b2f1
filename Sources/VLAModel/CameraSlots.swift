/// Fixed camera slots shared by all embodiments, so one model reads any robot's cameras:
/// 0 = scene, 1 = left or only wrist, 2 = right wrist.
public enum CameraSlots {
    public static func slot(for camera: String) -> Int {
        if camera == "scene" { return 0 }
        if camera.hasPrefix("right") { return 2 }
        return 1
    }
}
