import CoreML
import Foundation

// Load a package written by `synctalk-parity convert coreml` (an .mlpackage added to an Xcode
// target is compiled at build time; at run time MLModel.compileModel(at:) does the same).
func loadModel(package: URL, units: MLComputeUnits) throws -> MLModel {
    let compiled = try MLModel.compileModel(at: package)
    let config = MLModelConfiguration()
    config.computeUnits = units
    return try MLModel(contentsOf: compiled, configuration: config)
}

// One generator call. `image` holds the (1, 6, 320, 320) input (BGR ROI then masked ROI, /255) and
// `audio` the (1, 32, 16, 16) window, float32 in the pipeline's order: the arrays wrap the buffers,
// nothing is copied element by element. The output's strides may pad its rows: read it through them.
func generate(model: MLModel, image: UnsafeMutablePointer<Float>, audio: UnsafeMutablePointer<Float>) throws -> MLMultiArray {
    let input = try MLMultiArray(dataPointer: image, shape: [1, 6, 320, 320], dataType: .float32,
                                 strides: [614400, 102400, 320, 1])
    let window = try MLMultiArray(dataPointer: audio, shape: [1, 32, 16, 16], dataType: .float32,
                                  strides: [8192, 256, 16, 1])
    let features = try MLDictionaryFeatureProvider(dictionary: ["input": input, "audio": window])
    let result = try model.prediction(from: features)
    guard let output = result.featureValue(for: "output")?.multiArrayValue else {
        throw NSError(domain: "generator", code: 1, userInfo: [NSLocalizedDescriptionKey: "no output"])
    }
    return output
}
