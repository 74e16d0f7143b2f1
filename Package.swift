// swift-tools-version: 6.1
// SwiftVLA: staged VLA training and fleet-scale online post-training in Swift.
import Foundation
import PackageDescription

let root = Context.packageDirectory
let environment = Context.environment

/// MLX C++ library and headers: `MLX_DIR` (e.g. a macOS `pip install mlx` site-packages/mlx)
/// or the `mlx-cpu` wheel that `scripts/bootstrap` installs into `.venv/`.
let mlxDir = environment["MLX_DIR"] ?? "\(root)/.venv/swiftvla/mlx"
/// MuJoCo 4 C library and headers from the `mujoco-core` wheel (`MUJOCO_DIR` overrides).
let mujocoDir = environment["MUJOCO_DIR"] ?? "\(root)/.venv/swiftvla/mujoco"

#if os(Linux)
// OpenBLAS must come before libmlx so MLX's cblas_sgemm resolves to it (~40x faster
// than the reference BLAS bundled in the wheel).
let blasLink = ["-L/usr/lib/x86_64-linux-gnu", "-L/usr/lib/aarch64-linux-gnu", "-lopenblas"]
let glLink = ["-lOSMesa"]
#else
let blasLink: [String] = []
let glLink = ["-framework", "OpenGL"]
#endif

/// HDF5 C library for the robomimic/LIBERO export: Debian's `libhdf5-dev` (serial build);
/// `HDF5_DIR` (with `include/` and `lib/`) overrides, e.g. Homebrew's on macOS.
let hdf5Include: [String]
let hdf5Link: [String]
if let dir = environment["HDF5_DIR"] {
    hdf5Include = ["-I", "\(dir)/include"]
    hdf5Link = ["-L", "\(dir)/lib", "-lhdf5", "-Xlinker", "-rpath", "-Xlinker", "\(dir)/lib"]
} else {
    hdf5Include = ["-I", "/usr/include/hdf5/serial"]
    hdf5Link = ["-L/usr/lib/x86_64-linux-gnu/hdf5/serial", "-L/usr/lib/aarch64-linux-gnu/hdf5/serial", "-lhdf5"]
}

let mlxLink = blasLink + ["-L", "\(mlxDir)/lib", "-lmlx", "-Xlinker", "-rpath", "-Xlinker", "\(mlxDir)/lib"]
let mujocoLink = ["-L", mujocoDir, "-lmujoco", "-Xlinker", "-rpath", "-Xlinker", mujocoDir] + glLink

let package = Package(
    name: "SwiftVLA",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vla", targets: ["vla"]),
        .library(name: "TensorKit", targets: ["TensorKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.0.0"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.0.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.0.0"),
    ],
    targets: [
        .target(
            name: "CMLX",
            cxxSettings: [.unsafeFlags(["-I", "\(mlxDir)/include", "-O2"])],
            linkerSettings: [.unsafeFlags(mlxLink)]
        ),
        .target(
            name: "TensorKit",
            dependencies: ["CMLX"]
        ),
        .target(
            name: "CMuJoCo",
            cSettings: [.unsafeFlags(["-I", "\(mujocoDir)/include"])],
            linkerSettings: [.unsafeFlags(mujocoLink)]
        ),
        .target(
            name: "CHDF5",
            cSettings: [.unsafeFlags(hdf5Include)],
            linkerSettings: [.unsafeFlags(hdf5Link)]
        ),
        .target(
            name: "RobotData",
            dependencies: ["TensorKit", "CHDF5", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Yams", package: "Yams")]
        ),
        .target(
            name: "RobotSim",
            dependencies: ["RobotData", "CMuJoCo"],
            // Clang imports CMuJoCo.h for Swift and needs MuJoCo's headers too.
            swiftSettings: [.unsafeFlags(["-Xcc", "-I", "-Xcc", "\(mujocoDir)/include"])]
        ),
        .target(
            name: "VLAModel",
            dependencies: ["TensorKit", "RobotData"]
        ),
        .target(
            name: "Training",
            dependencies: ["VLAModel", "RobotData", "RobotSim", "TensorKit", .product(name: "Yams", package: "Yams")]
        ),
        .target(
            name: "Fleet",
            dependencies: [
                "Training", "VLAModel", "RobotData", "RobotSim", "TensorKit",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "Dashboard",
            dependencies: [
                "Fleet", "RobotData",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "PolicyWebSocket",
            dependencies: [
                "Fleet",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .executableTarget(
            name: "vla",
            dependencies: [
                "TensorKit", "RobotData", "RobotSim", "VLAModel", "Training", "Fleet", "Dashboard", "PolicyWebSocket",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "TensorKitTests", dependencies: ["TensorKit", "TestSupport"]),
        .testTarget(name: "RobotDataTests", dependencies: ["RobotData", "TensorKit"]),
        .testTarget(name: "RobotSimTests", dependencies: ["RobotSim", "RobotData"]),
        .testTarget(name: "VLAModelTests", dependencies: ["VLAModel", "RobotData", "TensorKit", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "VLAModel", "RobotSim", "RobotData", "TensorKit", "TestSupport"]),
        .target(name: "TestSupport", dependencies: ["VLAModel", "Training", "RobotSim", "RobotData", "TensorKit"], path: "Tests/TestSupport"),
        .testTarget(name: "FleetTests", dependencies: ["Fleet", "Training", "VLAModel", "RobotSim", "RobotData", "TensorKit", "TestSupport"]),
        .testTarget(name: "DashboardTests", dependencies: ["Dashboard", "Fleet", "RobotSim", "RobotData", "TensorKit", "TestSupport"]),
        .testTarget(name: "PolicyWebSocketTests", dependencies: [
            "PolicyWebSocket", "Fleet", "Training", "VLAModel", "RobotSim", "RobotData", "TensorKit", "TestSupport",
            .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
    ],
    cxxLanguageStandard: .cxx20
)
