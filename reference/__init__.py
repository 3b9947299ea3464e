"""The canonical SyncTalk_2D pipeline: audio -> mel -> encoder -> generator -> composited frames."""
