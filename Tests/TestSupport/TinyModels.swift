import VLAModel

/// A VLA small enough for a test: 16-pixel cameras, one layer each, 4-step chunks.
public func tinyVLAConfig() -> VLAConfig {
    var model = VLAConfig()
    model.imageSize = 16
    model.dims = 32
    model.heads = 2
    model.backboneLayers = 1
    model.expertLayers = 1
    model.horizon = 4
    model.executeSteps = 2
    model.noiseDraws = 1
    return model
}
