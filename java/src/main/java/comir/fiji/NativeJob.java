package comir.fiji;

import ij.IJ;

/**
 * Runs one long native call on the calling thread while a watcher thread shows its progress
 * (IJ.showProgress) and cancels it when the user presses Esc.
 */
final class NativeJob implements AutoCloseable {
	interface Call<T> {
		T run(long job);
	}

	final long id = Native.newJob();
	private volatile boolean finished;

	static <T> T run(String what, Call<T> call) {
		Native.ensureLoaded();
		NativeJob job = new NativeJob();
		try {
			job.watch(what);
			return call.run(job.id);
		}
		finally {
			job.close();
		}
	}

	private void watch(final String what) {
		Thread watcher = new Thread(new Runnable() {
			@Override
			public void run() {
				IJ.resetEscape();
				long start = System.nanoTime();
				boolean cancelling = false;
				while (!finished) {
					double fraction = Native.jobProgress(id);
					IJ.showProgress(fraction);
					if (IJ.escapePressed() && !cancelling) {
						Native.cancelJob(id);
						cancelling = true;
					}
					if (cancelling) IJ.showStatus(what + ": cancelling...");
					else IJ.showStatus(what + status(fraction, (System.nanoTime() - start) / 1e9) + " (Esc cancels)");
					try {
						Thread.sleep(200);
					}
					catch (InterruptedException e) {
						return;
					}
				}
			}
		}, "CoMIR progress");
		watcher.setDaemon(true);
		watcher.start();
	}

	/**
	 * ": 40%, about 3 min left" from the fraction done and the seconds so far (a long training
	 * run of hours must say so); empty until there is enough to extrapolate from.
	 */
	static String status(double fraction, double seconds) {
		if (!(fraction > 0.02) || fraction >= 1 || seconds < 2) return "...";
		double left = seconds * (1 - fraction) / fraction;
		return ": " + Math.round(100 * fraction) + "%, about " + duration(left) + " left";
	}

	/** "40 s", "12 min", "2.3 h" (as the library's progress::duration_words). */
	static String duration(double seconds) {
		return seconds < 90 ? Math.max(1, Math.round(seconds)) + " s" : seconds < 5400 ? Math.round(seconds / 60) + " min" : String.format(java.util.Locale.US, "%.1f h", seconds / 3600);
	}

	@Override
	public void close() {
		finished = true;
		Native.endJob(id);
		IJ.showProgress(1.0);
		IJ.showStatus(""); // no "(Esc cancels)" left behind after the run or an error
	}
}
