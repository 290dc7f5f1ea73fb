import './styles.css';
import { App, type DemoHandle } from './app.js';

declare global {
  interface Window {
    /** The live SDK objects of the demo, for the browser console (and the end-to-end tests). */
    parleyDemo?: DemoHandle;
  }
}

const root = document.getElementById('app');
if (root) {
  const app = new App(root);
  window.parleyDemo = app.handle;
  void app.start();
}
