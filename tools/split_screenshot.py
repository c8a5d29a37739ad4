"""Cut a tall report screenshot into page-sized tiles (easier to look at one screen at a time).

Usage: python tools/split_screenshot.py SHOT.png [TILE_HEIGHT]  -> SHOT_1.png, SHOT_2.png, ...
Blank tiles at the bottom (the page ended) are skipped.
"""

import sys

from PIL import Image


def main(path: str, tile: int = 1400) -> None:
    image = Image.open(path).convert("RGB")
    width, height = image.size
    stem = path.removesuffix(".png")
    for i, top in enumerate(range(0, height, tile), start=1):
        part = image.crop((0, top, width, min(top + tile, height)))
        if part.getextrema() == ((255, 255),) * 3:
            break
        part.save(f"{stem}_{i}.png")
        print(f"{stem}_{i}.png")


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:3]))
