/** The software version (package.json of the build), apart from the status module so that a function needing only the version does not load the status of every room. */
// Inlined by esbuild into the bundle (the image does not carry package.json).
import pkg from '../../package.json' with { type: 'json' };

export const softwareVersion: string = pkg.version;
