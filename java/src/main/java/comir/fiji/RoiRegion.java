package comir.fiji;

import ij.ImagePlus;
import ij.gui.Roi;
import ij.process.ImageProcessor;
import java.awt.Rectangle;

/**
 * An image's area ROI as the native library takes it: its bounds as ImageJ has them (they may
 * reach past the image; the library clips) and, for shapes other than rectangles, the mask of
 * the pixels inside. The library registers and trains on those pixels only.
 */
final class RoiRegion {
	/** {x, y, width, height}, or null when there is no area ROI. */
	final int[] bounds;
	/** width × height bytes, nonzero inside the shape; null for a rectangle or no ROI. */
	final byte[] mask;

	private RoiRegion(int[] bounds, byte[] mask) {
		this.bounds = bounds;
		this.mask = mask;
	}

	static final RoiRegion NONE = new RoiRegion(null, null);

	/** The area ROI of imp (NONE without one, or when use is false). */
	static RoiRegion of(ImagePlus imp, boolean use) {
		Roi roi = use ? imp.getRoi() : null;
		if (roi == null || !roi.isArea()) return NONE;
		Rectangle b = roi.getBounds();
		ImageProcessor m = roi.getType() == Roi.RECTANGLE && roi.getCornerDiameter() == 0 ? null : roi.getMask();
		return new RoiRegion(new int[] {b.x, b.y, b.width, b.height}, m == null ? null : (byte[]) m.convertToByte(false).getPixels());
	}
}
