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
				boolean cancelling = false;
				while (!finished) {
					double fraction = Native.jobProgress(id);
					IJ.showProgress(fraction);
					if (IJ.escapePressed() && !cancelling) {
						Native.cancelJob(id);
						cancelling = true;
					}
					if (cancelling) IJ.showStatus(what + ": cancelling...");
					else IJ.showStatus(what + Native.jobStatus(id) + " (Esc cancels)");
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

	@Override
	public void close() {
		finished = true;
		Native.endJob(id);
		IJ.showProgress(1.0);
		IJ.showStatus(""); // no "(Esc cancels)" left behind after the run or an error
	}
}
