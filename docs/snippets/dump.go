// A minimal port skeleton for synctalk-parity: the ports' command line, one stage dump per frame
// in the standard dump folder, and one timing line per frame. See docs/ports.md.
//
// It copies the pack's template frames where a real port writes its composited frames, and dumps
// a stand-in audio window (value i + j/8192 at position j of frame i) where a real port dumps the
// generator's audio input.
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"
)

// writeDump writes one row of a stage as raw little-endian float32 to
// $SYNCTALK_PARITY_DUMP_DIR/<stage>/<row>.f32; without the variable (not run by the harness) it
// writes nothing.
func writeDump(stage string, row int, values []float32) error {
	dir := os.Getenv("SYNCTALK_PARITY_DUMP_DIR")
	if dir == "" {
		return nil
	}
	folder := filepath.Join(dir, stage)
	if err := os.MkdirAll(folder, 0o755); err != nil {
		return err
	}
	buf := make([]byte, 4*len(values))
	for j, v := range values {
		binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(v))
	}
	return os.WriteFile(filepath.Join(folder, fmt.Sprintf("%d.f32", row)), buf, 0o644)
}

// printTiming prints one timing line on stdout: {"stage":"frame","ms":41.2}.
func printTiming(stage string, elapsed time.Duration) {
	line, _ := json.Marshal(struct {
		Stage string  `json:"stage"`
		Ms    float64 `json:"ms"`
	}{stage, float64(elapsed.Nanoseconds()) / 1e6})
	fmt.Println(string(line))
}

func main() {
	pack := flag.String("sanders", "", "pack folder")
	flag.String("audio", "", "input WAV")
	output := flag.String("output", "", "output folder")
	frames := flag.Int("frames", 0, "number of frames")
	flag.Parse()
	if err := os.MkdirAll(*output, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	window := make([]float32, 32*16*16) // the generator's audio input of one frame, (32, 16, 16)
	for i := 0; i < *frames; i++ {
		start := time.Now()
		template, err := os.ReadFile(filepath.Join(*pack, "full_body_img", fmt.Sprintf("%d.jpg", i+1)))
		if err == nil {
			err = os.WriteFile(filepath.Join(*output, fmt.Sprintf("frame_%05d.jpg", i+1)), template, 0o644)
		}
		for j := range window {
			window[j] = float32(i) + float32(j)/8192
		}
		if err == nil {
			err = writeDump("audio_windows", i, window)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		printTiming("frame", time.Since(start))
	}
}
