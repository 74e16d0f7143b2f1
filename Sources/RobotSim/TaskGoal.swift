/// What one instruction asks for: a task, the object it names and (push, pick_place) the area
/// the object must end in. A single-task episode has one goal; a chain (`TaskChain`) several.
public struct TaskGoal: Sendable, Equatable {
    public let task: TaskKind
    /// Index into the layout's objects (reach/push/pick target, stack's top block).
    public let object: Int
    /// Push circle or pick_place mat.
    public let zone: SceneZone?
    public let instruction: String
    /// Control steps this goal may take.
    public let stepLimit: Int

    public init(task: TaskKind, object: Int, zone: SceneZone?, instruction: String, stepLimit: Int? = nil) {
        self.task = task
        self.object = object
        self.zone = zone
        self.instruction = instruction
        self.stepLimit = stepLimit ?? task.stepLimit
    }
}
