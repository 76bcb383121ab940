package comir.fiji;

import ij.ImagePlus;

/** The outcome of one registration as the native library reports it (no numerics here). */
public final class Registration {
	/** Fixed → moving, pixels: {a, b, tx, c, d, ty}. */
	public final double[] matrix;
	public final boolean passed;
	public final double score, overlap, angleDegrees, scale, tx, ty, seconds;
	/** RANSAC inliers (landmarks for an import), or -1 for intensity-based methods. */
	public final int inliers;
	public final String method, measure, reason, kind;
	/** Inlier correspondences: fx, fy, mx, my, ... */
	public final double[] matches;
	public final ImagePlus fixed, moving;

	Registration(Object[] r, String kind, ImagePlus fixed, ImagePlus moving) {
		matrix = (double[]) r[0];
		double[] s = (double[]) r[1];
		passed = s[0] > 0.5;
		score = s[1];
		overlap = s[2];
		inliers = (int) s[3];
		angleDegrees = s[4];
		scale = s[5];
		tx = s[6];
		ty = s[7];
		seconds = s[8];
		method = (String) r[2];
		measure = (String) r[3];
		reason = (String) r[4];
		matches = (double[]) r[5];
		this.kind = r.length > 6 && r[6] != null ? (String) r[6] : kind;
		this.fixed = fixed;
		this.moving = moving;
	}
}
