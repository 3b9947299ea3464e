// synctalk-parity stage dump and timing line, in Swift (shown in docs/ports.md; not compiled here).
import Foundation

/// Writes one row of a stage as raw little-endian float32 to
/// $SYNCTALK_PARITY_DUMP_DIR/<stage>/<row>.f32; without the variable it writes nothing.
func writeDump(stage: String, row: Int, values: [Float]) throws {
    guard let dir = ProcessInfo.processInfo.environment["SYNCTALK_PARITY_DUMP_DIR"] else { return }
    let folder = URL(fileURLWithPath: dir).appendingPathComponent(stage)
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let bits = values.map { $0.bitPattern.littleEndian }
    let data = bits.withUnsafeBufferPointer { Data(buffer: $0) }
    try data.write(to: folder.appendingPathComponent("\(row).f32"))
}

/// Prints one timing line on stdout: {"stage":"frame","ms":41.2}.
func printTiming(stage: String, seconds: Double) {
    print("{\"stage\":\"\(stage)\",\"ms\":\(seconds * 1000)}")
}

// Frame 0: its generator audio input, (32, 16, 16) values, and the time the frame took.
let start = Date()
let window = [Float](repeating: 0, count: 32 * 16 * 16)
try writeDump(stage: "audio_windows", row: 0, values: window)
printTiming(stage: "frame", seconds: Date().timeIntervalSince(start))
