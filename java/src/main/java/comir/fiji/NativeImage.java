package comir.fiji;

import ij.ImagePlus;
import ij.ImageStack;
import ij.measure.Calibration;

/**
 * One image as the native library takes it: the channels of its current slice and frame
 * (ImageJ's own pixel arrays, not copied), the mask of its area ROI if it has one of another
 * shape than a rectangle, and the JSON describing them — size, calibration, ROI bounds: the
 * library's {@code request::PixelsInfo}. Taken once at the start of a command, so closing the
 * image while the library works changes nothing.
 */
final class NativeImage {
	final Object[] planes;
	/** width × height bytes of the ROI's bounds, nonzero inside; null for a rectangle or no ROI. */
	final byte[] mask;
	/** {width, height, calibration, roi}. */
	final String json;

	private NativeImage(Object[] planes, byte[] mask, String json) {
		this.planes = planes;
		this.mask = mask;
		this.json = json;
	}

	/** imp's current slice and frame; its area ROI only when useRoi. */
	static NativeImage of(ImagePlus imp, boolean useRoi) {
		RoiRegion roi = RoiRegion.of(imp, useRoi);
		StringBuilder j = new StringBuilder("{\"width\":").append(imp.getWidth()).append(",\"height\":").append(imp.getHeight())
			.append(",\"calibration\":").append(calibration(imp.getCalibration()));
		if (roi.bounds != null) {
			int[] b = roi.bounds;
			j.append(",\"roi\":[").append(b[0]).append(',').append(b[1]).append(',').append(b[2]).append(',').append(b[3]).append(']');
		}
		return new NativeImage(planes(imp), roi.mask, j.append('}').toString());
	}

	/** The channels the native library sees: an RGB image is one (colour) channel. */
	static int channels(ImagePlus imp) {
		return imp.getBitDepth() == 24 ? 1 : imp.getNChannels();
	}

	/** The channels of the current slice and frame. */
	static Object[] planes(ImagePlus imp) {
		ImageStack stack = imp.getStack();
		int channels = channels(imp);
		Object[] planes = new Object[channels];
		for (int c = 1; c <= channels; c++)
			planes[c - 1] = stack.getPixels(imp.getStackIndex(c, imp.getSlice(), imp.getFrame()));
		return planes;
	}

	/** {pixel_width, pixel_height, unit} as ImageJ has them; the library checks them. */
	static String calibration(Calibration c) {
		return "{\"pixel_width\":" + number(c.pixelWidth) + ",\"pixel_height\":" + number(c.pixelHeight) + ",\"unit\":" + Json.quote(c.getUnit()) + "}";
	}

	/** A finite number as JSON; anything else as a string, which the library refuses by name. */
	private static String number(double v) {
		return Double.isNaN(v) || Double.isInfinite(v) ? Json.quote(Double.toString(v)) : Double.toString(v);
	}
}
