"""Image evidence: why two sets of frames differ, from the pack and the frames alone (no models).

A port that ran on a phone or a Mac without Python sends back its frames and perhaps a few stage
dumps. The evidence compares them with a reference set (the canonical reference's, or another
port's) and names what differs, each finding with its frames, its numbers and how much of the
residual it explains:

* `templates`: which pack image each frame was composited on, and the sequence's offset, loop,
  repeats and drops (``template_sequence``);
* `paste`: where the generated patch sits, and the pattern of its displacement (``paste_position``);
* `colour`: a per-channel fit inside the patch (``colour``);
* `resize`: the paste's interpolation kernel (``resize_kernel``);
* `codec`: each side's JPEG quality and subsampling from its quantisation tables (``jpeg``);
* `mouth`: how the mouth follows the audio (``audio_drive``);
* `noise`: a small unstructured residual, as fp16 compute leaves (``precision_noise``);
* `dumps`: stage dumps of both sides compared (``stage``).

`collect.Evidence` observes pairs one at a time (any number, in threads); `findings.findings`
ranks what they show. docs/evidence.md states the contract.
"""
